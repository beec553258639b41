"""The local stack in certificate mode (``python -m local.run --cert-mode``), over real HTTP: the
emulator checks app_cert_sn / alipay_root_cert_sn on app pay and precreate, names its certificate
on answers, and the notifies it signs verify with the key in the Alipay certificate."""
from __future__ import annotations

import json
import sys
from urllib.parse import parse_qsl

import pytest

from local import keys
from shared.alipay import cert

from tests.e2e.conftest import free_port, http, start, wait_until
from tests.e2e.test_local_stack import PURCHASE, acknowledged, app_pay, order


@pytest.fixture(scope="module")
def cert_stack(tmp_path_factory):
    local_dir = tmp_path_factory.mktemp("local-cert")
    running = start([sys.executable, "-m", "local.run", "--cert-mode"], free_port(), local_dir,
                    tmp_path_factory.mktemp("log") / "stack.log")
    running.local_dir = local_dir
    yield running
    running.stop()


def pay_on(stack, channel):
    status, reply = http("POST", f"{stack.url}/pay", json.dumps({**PURCHASE, "channel": channel}).encode(), "application/json")
    assert status == 200, reply
    return reply["data"]


def test_app_pay_in_certificate_mode_carries_the_sns_and_ends_paid(cert_stack):
    data = pay_on(cert_stack, "app")
    params = dict(parse_qsl(data["orderStr"]))
    folder = cert_stack.local_dir / "certs"
    app_key = keys.local_keys(cert_stack.local_dir)[0].private_key
    assert params["app_cert_sn"] == cert.app_cert_sn(str(folder / "appCertPublicKey.crt"), app_key)
    assert params["alipay_root_cert_sn"] == cert.alipay_root_cert_sn(str(folder / "alipayRootCert.crt"))
    result = app_pay(cert_stack, data["orderStr"])
    assert result["resultStatus"] == "9000", result
    assert json.loads(result["result"])["alipay_cert_sn"] == cert.alipay_cert(str(folder / "alipayCertPublicKey_RSA2.crt")).sn
    acknowledged(cert_stack, data["outTradeNo"])
    assert order(cert_stack, data["outTradeNo"])[1]["data"]["status"] == 1


def test_precreate_in_certificate_mode(cert_stack):
    data = pay_on(cert_stack, "precreate")
    assert data["qrCode"]
    assert http("POST", f"{cert_stack.url}/sandbox/scan?out_trade_no={data['outTradeNo']}")[0] == 200
    paid = wait_until(lambda: order(cert_stack, data["outTradeNo"])[1], lambda body: body["data"]["status"] == 1)
    assert paid["data"]["status"] == 1
