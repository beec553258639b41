"""Issue 11 #7: the emulator speaks the request's charset, with the official Python SDK as client.

The SDK (``DefaultAlipayClient.execute`` over real HTTP to the local server's /sandbox/gateway.do)
percent-encodes the request in its configured charset, decodes the answer in it and verifies the
signature over the answer text encoded in it; before the fix a gbk request with Chinese text was
refused (escapes read as UTF-8) and every answer was UTF-8, which the SDK cannot verify as gbk.
The trade is then notified in the same charset, and both our verification and the SDK's accept it.
"""
from __future__ import annotations

import http.client
import json
import threading
from urllib.parse import quote_plus

import pytest

import alipay.aop.api.DefaultAlipayClient as sdk_client_module
from alipay.aop.api.domain.AlipayTradePrecreateModel import AlipayTradePrecreateModel
from alipay.aop.api.domain.AlipayTradeQueryModel import AlipayTradeQueryModel
from alipay.aop.api.request.AlipayTradePrecreateRequest import AlipayTradePrecreateRequest
from alipay.aop.api.request.AlipayTradeQueryRequest import AlipayTradeQueryRequest
from alipay.aop.api.util.WebUtils import url_encode

from local import alipay
from local.sandbox import Sandbox, scan
from local.server import LocalServer
from shared.alipay import notify

from tests import sdk_oracle
from tests.unit.test_sandbox import APP_ID, SELLER_ID, RecordingNotifier

pytestmark = pytest.mark.oracle

SUBJECT = "数据恢复产品 A & 中文"
CHARSETS = ("utf-8", "gbk", "GBK", "gb2312", "gb18030")


@pytest.fixture
def emulator(app_keys, alipay_keys):
    sandbox = Sandbox(app_id=APP_ID, seller_id=SELLER_ID, app_public_key=app_keys.public_key,
                      alipay_private_key=alipay_keys.private_key, notifier=RecordingNotifier())
    server = LocalServer(("127.0.0.1", 0), [], sandbox)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield sandbox, server.server_address[1]
    server.shutdown()
    server.server_close()


class Wire:
    """The SDK's ``do_post``, aimed at the local server's port (the SDK's own connects to port 80
    or 443 only: it cannot add a port to its URL). Same query, headers and body, encoded by the
    SDK's own ``url_encode``; the raw answers are kept for the test to look at."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.answers = []

    def __call__(self, url, query_string=None, headers=None, params=None, charset="utf-8", timeout=15):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        body = url_encode(params, charset) if params else None
        connection.request("POST", "/sandbox/gateway.do?" + query_string, body=body, headers=headers)
        reply = connection.getresponse()
        raw = reply.read()
        connection.close()
        assert reply.status == 200
        self.answers.append((reply.getheader("Content-Type"), raw))
        return raw


@pytest.fixture
def sdk(emulator, app_keys, alipay_keys, monkeypatch):
    wire = Wire(emulator[1])
    monkeypatch.setattr(sdk_client_module, "do_post", wire)

    def client(charset):
        made = sdk_oracle.sdk_client(APP_ID, app_keys.private_base64(pkcs8=False), alipay_keys.public_base64())
        made._DefaultAlipayClient__config.charset = charset  # the SDK keeps its config private
        return made

    client.wire = wire
    return client


def precreate(client, out_trade_no):
    model = AlipayTradePrecreateModel()
    model.out_trade_no, model.total_amount, model.subject, model.body = out_trade_no, "198.01", SUBJECT, "扫码付款"
    model.product_code = "FACE_TO_FACE_PAYMENT"
    request = AlipayTradePrecreateRequest(biz_model=model)
    request.notify_url = "https://pay.example.com/pay/notify"
    return json.loads(client.execute(request))


@pytest.mark.parametrize("charset", CHARSETS)
def test_the_official_sdk_pays_and_queries_in_its_charset(emulator, sdk, charset):
    sandbox, _ = emulator
    client = sdk(charset)
    answer = precreate(client, "ORDER_1795000000000_cs")  # the SDK verified the answer in its charset
    assert answer["code"] == "10000" and answer["qr_code"], answer
    trade = sandbox.ledger.find("ORDER_1795000000000_cs")
    assert trade.subject == SUBJECT and trade.charset == charset  # the escapes were read in the charset

    model = AlipayTradeQueryModel()
    model.out_trade_no = "ORDER_NOT_THERE"
    refused = json.loads(client.execute(AlipayTradeQueryRequest(biz_model=model)))
    assert (refused["sub_code"], refused["sub_msg"]) == ("ACQ.TRADE_NOT_EXIST", "交易不存在")  # Chinese, verified
    content_type, raw = sdk.wire.answers[-1]
    assert content_type == f"application/json; charset={charset}"
    assert "交易不存在".encode(notify.charset_encoding(charset)) in raw  # sent in the charset, not UTF-8 alone


@pytest.mark.parametrize("charset", CHARSETS)
def test_the_trade_is_notified_in_the_request_charset(emulator, sdk, alipay_keys, charset):
    sandbox, _ = emulator
    precreate(sdk(charset), "ORDER_1795000000000_nt")
    scan(sandbox, "ORDER_1795000000000_nt")
    [(_, _, params, _)] = sandbox.notifier.sent
    assert params["charset"] == charset and params["subject"] == SUBJECT
    body = alipay.form_body(params)
    codec = notify.charset_encoding(charset)
    assert quote_plus(SUBJECT, encoding=codec).encode() in body  # escaped in the charset, as Alipay posts it
    verified = notify.verify_notify(body, public_key=alipay_keys.public_key, app_id=APP_ID, seller_id=SELLER_ID)
    assert verified.params["subject"] == SUBJECT and verified.trade_status == "TRADE_SUCCESS"
    assert sdk_oracle.sdk_verify_notify(params, alipay_keys.public_base64())


def test_an_unknown_charset_is_refused_in_utf8(emulator):
    sandbox, _ = emulator
    status, content_type, raw = sandbox.gateway(b"charset=latin9&method=alipay.trade.query", b"")
    assert (status, content_type) == (200, "application/json; charset=utf-8")
    assert json.loads(raw)["error_response"]["sub_code"] == "isv.invalid-charset"
