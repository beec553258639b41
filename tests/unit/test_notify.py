"""Notify parsing and verification, with Alipay played by local.alipay.sign_notify."""
import pytest

from local import alipay
from shared.alipay.notify import NotifyRejected, parse_form, verify_notify

from tests.conftest import APP_ID, SELLER_ID


def signed(keys, **overrides):
    fields = dict(app_id=APP_ID, out_trade_no="ORDER_1_a", total_amount="198.01") | overrides
    return alipay.sign_notify(alipay.notify_params(**fields), keys.private_key)


def verify(raw, keys, seller_id=SELLER_ID):
    return verify_notify(raw, public_key=keys.public_key, app_id=APP_ID, seller_id=seller_id)


def test_a_genuine_notify_verifies(alipay_keys):
    notify = verify(alipay.form_body(signed(alipay_keys)), alipay_keys)
    assert (notify.out_trade_no, notify.trade_status, notify.total_cents) == ("ORDER_1_a", "TRADE_SUCCESS", 19801)


def test_a_gbk_notify_verifies_over_gbk_text(alipay_keys):
    params = signed(alipay_keys, charset="gbk", subject="数据恢复产品 A", body="中文描述")
    raw = alipay.form_body(params)
    assert b"%CA%FD" in raw  # "数" in GBK, percent-encoded
    notify = verify(raw, alipay_keys)
    assert notify.params["subject"] == "数据恢复产品 A"
    # The same fields signed over UTF-8 bytes but labelled gbk do not verify.
    forged = dict(alipay.sign_notify({k: v for k, v in params.items() if k not in ("sign", "sign_type")} | {"charset": "utf-8"},
                                      alipay_keys.private_key), charset="gbk")
    with pytest.raises(NotifyRejected, match="bad signature"):
        verify(alipay.form_body(forged), alipay_keys)


def test_unencoded_utf8_bytes_in_the_body_are_read_too(alipay_keys):
    params = signed(alipay_keys, subject="咖啡")
    raw = "&".join(f"{k}={v}" for k, v in params.items() if k != "sign").encode() + b"&sign=" + alipay.form_body({"sign": params["sign"]})[5:]
    assert verify(raw, alipay_keys).params["subject"] == "咖啡"


@pytest.mark.parametrize(
    "change, reason",
    [
        (lambda p: p.update(total_amount="0.01"), "bad signature"),
        (lambda p: p.update(trade_status="TRADE_CLOSED"), "bad signature"),
        (lambda p: p.pop("sign"), "missing sign"),
        (lambda p: p.update(sign_type="RSA"), "sign_type"),
        (lambda p: p.update(extra="x"), "bad signature"),
    ],
)
def test_tampering_is_rejected(alipay_keys, change, reason):
    params = signed(alipay_keys)
    change(params)
    with pytest.raises(NotifyRejected, match=reason):
        verify(alipay.form_body(params), alipay_keys)


def test_another_keys_signature_is_rejected(alipay_keys, app_keys):
    with pytest.raises(NotifyRejected, match="bad signature"):
        verify(alipay.form_body(signed(app_keys)), alipay_keys)


def test_app_id_and_seller_id_must_be_ours(alipay_keys):
    with pytest.raises(NotifyRejected, match="app_id"):
        verify(alipay.form_body(alipay.sign_notify(alipay.notify_params(
            app_id="2021999999999999", out_trade_no="O", total_amount="1.00"), alipay_keys.private_key)), alipay_keys)
    with pytest.raises(NotifyRejected, match="seller_id"):
        verify(alipay.form_body(signed(alipay_keys, seller_id="2088999999999999")), alipay_keys)
    assert verify(alipay.form_body(signed(alipay_keys, seller_id="2088999999999999")), alipay_keys, seller_id=None)


def test_duplicate_fields_are_rejected(alipay_keys):
    raw = alipay.form_body(signed(alipay_keys)) + b"&total_amount=0.01"
    with pytest.raises(NotifyRejected, match="duplicate"):
        verify(raw, alipay_keys)


@pytest.mark.parametrize("raw", [b"", b"not a form", b"a=%FF%FE", b"charset=base64&a=1", b"x=" + b"y" * 70_000,
                                 b"&".join(b"k%d=v" % i for i in range(300))])
def test_broken_bodies_are_rejected_not_crashing(raw, alipay_keys):
    with pytest.raises(NotifyRejected):
        verify(raw, alipay_keys)


def test_amounts_compare_by_value(alipay_keys):
    assert verify(alipay.form_body(signed(alipay_keys, total_amount="198.010")), alipay_keys).total_cents == 19801


def test_paid_notify_needs_trade_no(alipay_keys):
    with pytest.raises(NotifyRejected, match="trade_no"):
        verify(alipay.form_body(signed(alipay_keys, trade_no="")), alipay_keys)


def test_parse_form_decodes_plus_and_percent():
    assert parse_form(b"a=1+2&b=%E4%B8%AD&c=") == {"a": "1 2", "b": "中", "c": ""}
