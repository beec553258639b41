"""Our gateway requests equal the official SDK's (``DefaultAlipayClient.execute``) byte for byte.

The SDK's ``do_post`` is replaced by a recorder, and its clock frozen to our Shanghai timestamp,
so both sides sign the same content; PKCS#1 v1.5 is deterministic, so the signatures must match.
The SDK also parses our fixture-signed answer, which checks that both extract the same raw text.
"""
import datetime as real_datetime
import json

import pytest

pytest.importorskip("alipay.aop.api")

import alipay.aop.api.DefaultAlipayClient as sdk_client_module  # noqa: E402
from alipay.aop.api.domain.AlipayTradeCloseModel import AlipayTradeCloseModel  # noqa: E402
from alipay.aop.api.domain.AlipayTradeFastpayRefundQueryModel import AlipayTradeFastpayRefundQueryModel  # noqa: E402
from alipay.aop.api.request.AlipayTradeFastpayRefundQueryRequest import AlipayTradeFastpayRefundQueryRequest  # noqa: E402
from alipay.aop.api.domain.AlipayTradePrecreateModel import AlipayTradePrecreateModel  # noqa: E402
from alipay.aop.api.domain.AlipayTradeQueryModel import AlipayTradeQueryModel  # noqa: E402
from alipay.aop.api.domain.AlipayTradeRefundModel import AlipayTradeRefundModel  # noqa: E402
from alipay.aop.api.request.AlipayTradeCloseRequest import AlipayTradeCloseRequest  # noqa: E402
from alipay.aop.api.request.AlipayTradePrecreateRequest import AlipayTradePrecreateRequest  # noqa: E402
from alipay.aop.api.request.AlipayTradeQueryRequest import AlipayTradeQueryRequest  # noqa: E402
from alipay.aop.api.request.AlipayTradeRefundRequest import AlipayTradeRefundRequest  # noqa: E402

from local import alipay  # noqa: E402
from shared.domain import clock  # noqa: E402
from shared.alipay import orderstr
from shared.alipay.gateway import AlipayGateway  # noqa: E402

from tests.sdk_oracle import frozen_sdk_clock, sdk_client  # noqa: E402

pytestmark = pytest.mark.oracle

APP_ID = "2021000000000001"
URL = "https://openapi.alipay.com/gateway.do"
NOTIFY_URL = "https://pay.example.com/pay/notify"
PRECREATE_ORDER = orderstr.PayOrder("ORDER_1764150000000_qr", 19801, "数据恢复产品 A & B", body="扫码")
AT = real_datetime.datetime(2026, 11, 26, 18, 30, 5, tzinfo=clock.SHANGHAI)


def sdk_request(method, model_cls, request_cls, fields):
    model = model_cls()
    for name, value in fields.items():
        setattr(model, name, value)
    request = request_cls(biz_model=model)
    if method == "alipay.trade.precreate":  # creates a trade: Alipay notifies its payment
        request.notify_url = NOTIFY_URL
    return request


CASES = [
    ("alipay.trade.query", AlipayTradeQueryModel, AlipayTradeQueryRequest, {"out_trade_no": "ORDER_1764150000000_abc"},
     lambda gw: gw.trade_query("ORDER_1764150000000_abc", at=AT),
     {"trade_status": "WAIT_BUYER_PAY", "total_amount": "198.01", "trade_no": "2026112622001400000000000001"}),
    ("alipay.trade.close", AlipayTradeCloseModel, AlipayTradeCloseRequest, {"out_trade_no": "ORDER_1764150000000_abc"},
     lambda gw: gw.trade_close("ORDER_1764150000000_abc", at=AT), {"trade_no": "2026112622001400000000000001"}),
    ("alipay.trade.refund", AlipayTradeRefundModel, AlipayTradeRefundRequest,
     {"out_trade_no": "ORDER_1764150000000_abc", "refund_amount": "12.30", "out_request_no": "RF_1", "refund_reason": "数据恢复 失败 & 退款"},
     lambda gw: gw.trade_refund("ORDER_1764150000000_abc", 1230, "RF_1", reason="数据恢复 失败 & 退款", at=AT),
     {"fund_change": "Y", "refund_fee": "12.30"}),
    ("alipay.trade.fastpay.refund.query", AlipayTradeFastpayRefundQueryModel, AlipayTradeFastpayRefundQueryRequest,
     {"out_trade_no": "ORDER_1764150000000_abc", "out_request_no": "RF_1", "query_options": ["gmt_refund_pay"]},
     lambda gw: gw.trade_fastpay_refund_query("ORDER_1764150000000_abc", "RF_1", at=AT),
     {"out_request_no": "RF_1", "refund_amount": "12.30", "total_amount": "198.01", "refund_status": "REFUND_SUCCESS",
      "gmt_refund_pay": "2026-11-26 18:30:06"}),
    ("alipay.trade.precreate", AlipayTradePrecreateModel, AlipayTradePrecreateRequest,
     {"out_trade_no": PRECREATE_ORDER.out_trade_no, "total_amount": "198.01", "subject": "数据恢复产品 A & B",
      "body": "扫码", "product_code": "FACE_TO_FACE_PAYMENT", "timeout_express": "30m"},
     lambda gw: gw.trade_precreate(PRECREATE_ORDER, NOTIFY_URL, at=AT), {"qr_code": "https://qr.alipay.com/bax01"}),
]


@pytest.mark.parametrize("method,model_cls,request_cls,fields,ours,answer", CASES, ids=[c[0] for c in CASES])
def test_request_bytes_equal_the_official_sdk(monkeypatch, app_keys, alipay_keys, method, model_cls, request_cls, fields, ours, answer):
    payload = {"code": "10000", "msg": "Success", "out_trade_no": fields["out_trade_no"], **answer}
    body = alipay.response_body(method, payload, alipay_keys.private_key)

    sent = []

    def do_post(url, query_string=None, headers=None, params=None, charset="utf-8", timeout=15):
        from alipay.aop.api.util.WebUtils import url_encode

        sent.append((query_string, url_encode(params, charset).encode(charset)))
        return body

    monkeypatch.setattr(sdk_client_module, "do_post", do_post)
    client = sdk_client(APP_ID, app_keys.private_base64(pkcs8=False), alipay_keys.public_base64())
    with frozen_sdk_clock(AT):
        sdk_content = client.execute(sdk_request(method, model_cls, request_cls, fields))

    recorded = []
    gateway = AlipayGateway(
        app_id=APP_ID, private_key=app_keys.private_key, alipay_public_key=alipay_keys.public_key,
        transport=lambda url, query, form, timeout: recorded.append((url, query, form)) or body,
    )
    ours(gateway)

    (sdk_query, sdk_body), = sent
    (url, query, form), = recorded
    assert url == URL
    assert sorted(query.split("&")) == sorted(sdk_query.split("&"))  # same parameters, values, encoding, sign
    assert form == sdk_body
    assert json.loads(sdk_content) == payload  # the SDK verified the same raw text we did
