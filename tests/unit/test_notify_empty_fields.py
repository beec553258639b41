"""Issue 11 #4: notifies and sync returns are checked by Alipay's own rule — every field but
``sign`` and ``sign_type``, sorted, **empty values included** (Java's ``getSignCheckContentV1``,
the official Python SDK's README check, fzlee's ``verify``); requests still drop empty values.

The notifies are signed by the official SDK's code (tests/sdk_oracle.py), not by ours, so our
verification is held to Alipay's rule rather than to itself; and every notify the emulator signs
is checked by both, empty fields included.
"""
from __future__ import annotations

import pytest

from local import alipay, cashier
from local.ledger import TRADE_CLOSED, TRADE_SUCCESS
from shared.alipay import gateway, notify, signing, sync_return
from shared.domain import clock

from tests import sdk_oracle
from tests.unit.test_sandbox import APP_ID, NOTIFY_URL, SELLER_ID, emulator, order_str  # noqa: F401 - the fixture

pytestmark = pytest.mark.oracle

EMPTY = {"body": "", "passback_params": "", "fund_bill_list": ""}


def alipay_signed(alipay_keys, **fields):
    """A notify as Alipay posts it, empty fields and all, signed by the official SDK's code."""
    params = alipay.notify_params(app_id=APP_ID, out_trade_no="ORDER_1", total_amount="198.01", **fields)
    return sdk_oracle.sdk_sign_notify(params, alipay_keys.private_base64(pkcs8=False))


def ours(params, alipay_keys) -> bool:
    try:
        notify.verify_notify(alipay.form_body(params), public_key=alipay_keys.public_key, app_id=APP_ID)
    except notify.NotifyRejected as exc:
        assert exc.reason == "bad signature", exc.reason
        return False
    return True


def test_a_notify_with_empty_fields_signed_as_alipay_signs_is_accepted(alipay_keys):
    params = alipay_signed(alipay_keys, **EMPTY)
    assert ours(params, alipay_keys)
    assert notify.parse_form(alipay.form_body(params))["body"] == ""  # posted, and kept


def test_an_empty_field_added_after_signing_is_refused(alipay_keys):
    params = {**alipay_signed(alipay_keys), "passback_params": ""}
    assert not ours(params, alipay_keys)
    assert not sdk_oracle.sdk_verify_notify(params, alipay_keys.public_base64())


def test_an_empty_field_removed_after_signing_is_refused(alipay_keys):
    params = alipay_signed(alipay_keys, **EMPTY)
    del params["body"]
    assert not ours(params, alipay_keys)
    assert not sdk_oracle.sdk_verify_notify(params, alipay_keys.public_base64())


def test_a_sync_return_with_an_empty_field_is_checked_by_the_same_rule(alipay_keys):
    params = {"charset": "utf-8", "out_trade_no": "ORDER_1", "method": "alipay.trade.page.pay.return",
              "total_amount": "198.01", "trade_no": "2026112622001400000000000009", "auth_app_id": APP_ID,
              "version": "1.0", "app_id": APP_ID, "seller_id": SELLER_ID, "timestamp": "2026-11-26 10:06:00",
              "passback_params": ""}
    signed = sdk_oracle.sdk_sign_notify(params, alipay_keys.private_base64(pkcs8=False))
    back = sync_return.verify_return(alipay.form_body(signed), public_key=alipay_keys.public_key, app_id=APP_ID)
    assert back.out_trade_no == "ORDER_1"
    with pytest.raises(notify.NotifyRejected, match="bad signature"):
        sync_return.verify_return(alipay.form_body({**signed, "body": ""}), public_key=alipay_keys.public_key, app_id=APP_ID)


def test_requests_still_leave_empty_values_out():
    params = {"app_id": "1", "body": "", "sign": "x", "sign_type": "RSA2"}
    assert signing.sign_content(params) == "app_id=1&sign_type=RSA2"
    assert signing.check_content(params) == "app_id=1&body="


def emulator_notifies(emulator, app_keys):
    """Every kind of notify and return the emulator signs: paid, closed, refunded, a trade still
    open (its ``gmt_close=`` is empty), extra empty fields, a sync return."""
    emulator.app_pay(order_str(app_keys, out_trade_no="ORDER_PAID"))
    emulator.app_pay(order_str(app_keys, out_trade_no="ORDER_CLOSED"), outcome="closed")
    yield "paid", emulator.notifier.sent[0][2]
    yield "closed", emulator.notifier.sent[1][2]
    yield "refunded", emulator.signed_notify("ORDER_PAID", "n1", {"refund_fee": "1.00", "out_biz_no": "R1",
                                                                 "gmt_refund": "2026-11-26 10:07:00.123"})
    yield "empty extras", emulator.signed_notify("ORDER_PAID", "n2", EMPTY)
    query, body = gateway.build_request(
        gateway.TRADE_PRECREATE, {"out_trade_no": "ORDER_OPEN", "total_amount": "1.00", "subject": "QR",
                                   "product_code": gateway.PRECREATE_PRODUCT_CODE},
        app_id=APP_ID, private_key=app_keys.private_key, timestamp=clock.alipay_timestamp(), notify_url=NOTIFY_URL,
    )
    assert emulator.gateway(query.encode(), body)[0] == 200
    open_notify = emulator.signed_notify("ORDER_OPEN", "n3")
    assert open_notify["gmt_close"] == ""  # an empty field the emulator posts: it must be signed
    yield "open trade", open_notify
    yield "sync return", cashier.sync_return(emulator, emulator.ledger.find("ORDER_PAID"),
                                             "alipay.trade.page.pay", "utf-8")


def test_the_official_sdk_and_ours_agree_on_every_emulator_notify(emulator, app_keys, alipay_keys):  # noqa: F811
    public = alipay_keys.public_base64()
    seen = 0
    for name, params in emulator_notifies(emulator, app_keys):
        seen += 1
        assert sdk_oracle.sdk_verify_notify(params, public), f"{name}: the SDK refuses the emulator's notify"
        parsed = notify.parse_form(alipay.form_body(params))
        notify.verify_signature(parsed, alipay_keys.public_key)  # ours accepts it too
        added = {**params, "zz_added": ""}
        assert not sdk_oracle.sdk_verify_notify(added, public), name
        with pytest.raises(notify.NotifyRejected, match="bad signature"):
            notify.verify_signature(notify.parse_form(alipay.form_body(added)), alipay_keys.public_key)
    assert seen == 6
    assert emulator.ledger.find("ORDER_PAID").status == TRADE_SUCCESS
    assert emulator.ledger.find("ORDER_CLOSED").status == TRADE_CLOSED
