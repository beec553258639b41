"""Certificate mode end to end: requests carry the SNs, notifies verify with the certificate's key,
and a notify or return naming another Alipay certificate is refused (Alipay retries it)."""
import json
from urllib.parse import parse_qsl, urlencode

import pytest

from functions.pay.handler import handler as pay
from functions.pay_notify.handler import handler as pay_notify
from functions.pay_return.handler import handler as pay_return
from local import alipay, certs, events
from shared.alipay import cert, signing
from shared.domain.orders import PAID, UNPAID

from tests import sdk_oracle as oracle
from tests.conftest import APP_ID, notify_event, pay_event

ORDER = {"productId": "P1", "userId": "U1", "orderName": "order", "total_amount": "12.30"}


@pytest.fixture(scope="module")
def files(app_keys, alipay_keys):
    return certs.CertFiles.generate(app_keys.private_key, alipay_keys.private_key)


@pytest.fixture(scope="module")
def stale_key():
    return alipay.KeyPair.generate()


@pytest.fixture
def cert_env(env, monkeypatch, files, stale_key):
    # A public key left over from public-key mode: the certificate's key must be the one used.
    monkeypatch.setenv("ALIPAY_PUBLIC_KEY", stale_key.public_pem())
    monkeypatch.setenv("ALIPAY_APP_CERT", files.app_cert)
    monkeypatch.setenv("ALIPAY_CERT", files.alipay_cert)
    monkeypatch.setenv("ALIPAY_ROOT_CERT", files.root_cert)
    return env


def signed_by_app(params, app_keys):
    content = signing.sign_content(params, signing.REQUEST_EXCLUDED)
    return signing.rsa2_verify(app_keys.public_key, content, params["sign"])


@pytest.mark.parametrize("channel", ["app", "page", "wap"])
def test_requests_carry_both_sns_under_the_signature(cert_env, store, files, app_keys, channel):
    reply = pay(pay_event({**ORDER, "channel": channel}))
    assert reply["statusCode"] == 200, reply
    data = json.loads(reply["body"])["data"]
    params = dict(parse_qsl(data["orderStr"])) if channel == "app" else oracle.query(data["payUrl"])[1]
    assert params["app_cert_sn"] == cert.cert_sn(files.app)
    assert params["alipay_root_cert_sn"] == cert.alipay_root_cert_sn(files.root_cert)
    assert signed_by_app(params, app_keys)
    if channel != "app":
        _, action, _ = oracle.form(data["payForm"])
        assert action["app_cert_sn"] == params["app_cert_sn"]


def paid_notify(out_trade_no, key, **extra):
    return alipay.sign_notify(
        alipay.notify_params(app_id=APP_ID, out_trade_no=out_trade_no, total_amount="12.30", **extra), key.private_key
    )


def new_order():
    return json.loads(pay(pay_event(ORDER))["body"])["data"]["outTradeNo"]


def test_notify_is_verified_with_the_alipay_certificates_key(cert_env, store, files, alipay_keys, app_keys):
    out_trade_no = new_order()
    assert pay_notify(notify_event(paid_notify(out_trade_no, app_keys)))["body"] == "fail"
    assert store.get(out_trade_no).status == UNPAID
    named = paid_notify(out_trade_no, alipay_keys, alipay_cert_sn=cert.cert_sn(files.alipay))
    assert pay_notify(notify_event(named))["body"] == "success"
    assert store.get(out_trade_no).status == PAID


def test_a_notify_naming_another_alipay_certificate_is_refused_until_it_is_installed(
    cert_env, store, files, alipay_keys, app_keys, monkeypatch
):
    """Alipay rotated its certificate: the notify names the new SN. We hold only the old one, so
    we answer ``fail`` (nothing changes; Alipay retries for about 25 hours). Once the operator
    installs the new certificate in ALIPAY_CERT, the retried delivery succeeds."""
    from shared import config

    out_trade_no = new_order()
    rotated = certs.CertFiles.generate(app_keys.private_key, alipay_keys.private_key)  # same key, new cert
    notify = paid_notify(out_trade_no, alipay_keys, alipay_cert_sn=cert.cert_sn(rotated.alipay))
    assert cert.cert_sn(rotated.alipay) != cert.cert_sn(files.alipay)
    assert pay_notify(notify_event(notify))["body"] == "fail"
    assert store.get(out_trade_no).status == UNPAID

    monkeypatch.setenv("ALIPAY_CERT", rotated.alipay_cert)
    config.reset()
    assert pay_notify(notify_event(notify))["body"] == "success"
    assert store.get(out_trade_no).status == PAID


def test_a_return_naming_another_alipay_certificate_is_refused(cert_env, store, alipay_keys, app_keys):
    out_trade_no = new_order()
    params = {"app_id": APP_ID, "out_trade_no": out_trade_no, "total_amount": "12.30", "charset": "utf-8"}
    good = alipay.sign_notify(params, alipay_keys.private_key)
    other = alipay.sign_notify({**params, "alipay_cert_sn": "0" * 32}, alipay_keys.private_key)
    show = lambda p: pay_return(events.http_event("GET", "/pay/return", query=urlencode(p)))["statusCode"]  # noqa: E731
    assert (show(good), show(other)) == (200, 400)
