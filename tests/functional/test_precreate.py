"""pay with channel=precreate: the row first, then alipay.trade.precreate through the gateway client
for the QR code; the payment then arrives by notify like any other."""
import json

import pytest

from functions.pay.handler import handler as pay
from functions.pay_notify.handler import handler as pay_notify
from local import alipay
from shared.alipay import gateway as gateway_module
from shared.domain.orders import PAID, UNPAID

from tests.conftest import APP_ID, NOTIFY_URL, notify_event, pay_event, stored_items
from tests.fake_alipay import FakeAlipay

ORDER = {"productId": "P1", "userId": "U1", "orderName": "数据恢复产品 A", "total_amount": "198.01", "channel": "precreate"}


@pytest.fixture
def fake(env, monkeypatch, app_keys, alipay_keys):
    fake = FakeAlipay(app_keys, alipay_keys)
    monkeypatch.setattr(gateway_module, "http_post", fake)
    return fake


def test_precreate_returns_alipays_qr_code_for_a_stored_order(fake, store, alipay_keys):
    reply = pay(pay_event(ORDER))
    assert reply["statusCode"] == 200, reply
    data = json.loads(reply["body"])["data"]
    assert set(data) == {"qrCode", "outTradeNo"} and data["qrCode"].startswith("https://qr.alipay.com/")
    (method, biz), = fake.calls
    assert method == "alipay.trade.precreate" and biz["out_trade_no"] == data["outTradeNo"]
    assert biz["total_amount"] == "198.01" and biz["product_code"] == "FACE_TO_FACE_PAYMENT"
    assert fake.requests[-1]["notify_url"] == NOTIFY_URL
    assert store.get(data["outTradeNo"]).status == UNPAID

    notify = alipay.sign_notify(
        alipay.notify_params(app_id=APP_ID, out_trade_no=data["outTradeNo"], total_amount="198.01"), alipay_keys.private_key
    )
    assert pay_notify(notify_event(notify))["body"] == "success"
    assert store.get(data["outTradeNo"]).status == PAID


def test_alipay_refusing_is_502_and_leaves_only_an_unpaid_row(fake, store):
    fake.error_next = {"code": "40004", "msg": "Business Failed", "sub_code": "ACQ.ACCESS_FORBIDDEN", "sub_msg": "no"}
    reply = pay(pay_event(ORDER))
    body = json.loads(reply["body"])
    assert reply["statusCode"] == 502 and body["data"] is None and "ACQ.ACCESS_FORBIDDEN" in body["msg"]
    (item,) = stored_items(store._client)
    assert item["status"] == {"N": str(UNPAID)}  # reconcile closes it; nothing can pay into nothing


def test_unreachable_gateway_is_502(fake, store):
    fake.fail_next = gateway_module.GatewayError("gateway unreachable: timeout")
    assert pay(pay_event(ORDER))["statusCode"] == 502


def test_without_alipays_key_nothing_is_written(fake, dynamodb, monkeypatch):
    monkeypatch.delenv("ALIPAY_PUBLIC_KEY")
    assert pay(pay_event(ORDER))["statusCode"] == 500
    assert stored_items(dynamodb) == [] and fake.calls == []
