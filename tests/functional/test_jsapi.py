"""pay with channel=jsapi: the row first, then alipay.trade.create at the emulator for the trade_no
the front end hands to ``my.tradePay``; the payment then arrives by notify like any other."""
import json

import pytest

from functions.pay.handler import handler as pay
from functions.pay_notify.handler import handler as pay_notify
from local.sandbox import scan
from shared.alipay import gateway as gateway_module
from shared.domain.orders import PAID, UNPAID

from tests.conftest import NOTIFY_URL, notify_event, pay_event, stored_items
from tests.emulated_alipay import EmulatedAlipay

BUYER_ID = "2088102177846881"
ORDER = {"productId": "P1", "userId": "U1", "orderName": "数据恢复产品 A", "total_amount": "198.01",
         "channel": "jsapi", "buyerId": BUYER_ID}


class Sent:
    """Stands in for the emulator's notify sender: the tests post notifies themselves (no network)."""

    def __init__(self):
        self.sent = []

    def send(self, out_trade_no, url, sign, lost_answers=0):
        self.sent.append((out_trade_no, url, sign()))


@pytest.fixture
def emulator(env, monkeypatch, app_keys, alipay_keys):
    emulator = EmulatedAlipay(app_keys, alipay_keys)
    emulator.sandbox.notifier = Sent()
    monkeypatch.setattr(gateway_module, "http_post", emulator)
    return emulator


def test_jsapi_creates_the_trade_for_the_buyer_and_answers_its_trade_no(emulator, store):
    reply = pay(pay_event({**ORDER, "opAppId": "2021000000000099"}))
    assert reply["statusCode"] == 200, reply
    data = json.loads(reply["body"])["data"]
    assert set(data) == {"tradeNo", "outTradeNo"}
    (method, biz), = emulator.calls
    assert method == "alipay.trade.create" and biz["out_trade_no"] == data["outTradeNo"]
    assert biz["product_code"] == "JSAPI_PAY" and biz["buyer_id"] == BUYER_ID and biz["op_app_id"] == "2021000000000099"
    trade = emulator.trade(data["outTradeNo"])
    assert trade.trade_no == data["tradeNo"] and trade.buyer_id == BUYER_ID and trade.notify_url == NOTIFY_URL
    assert store.get(data["outTradeNo"]).status == UNPAID

    scan(emulator.sandbox, data["outTradeNo"])  # the buyer pays in Alipay's app (my.tradePay)
    (out_trade_no, url, notify), = emulator.sandbox.notifier.sent  # the emulator's own signed notify
    assert (out_trade_no, url, notify["buyer_id"]) == (data["outTradeNo"], NOTIFY_URL, BUYER_ID)
    assert pay_notify(notify_event(notify))["body"] == "success"
    assert store.get(data["outTradeNo"]).status == PAID


def test_a_buyer_open_id_works_as_well(emulator, store):
    payload = {k: v for k, v in ORDER.items() if k != "buyerId"}
    reply = pay(pay_event({**payload, "buyerOpenId": "074a1CcTG1LelxKe4xQC0zgNdId0nxi95b5lsNpazWYoCo5"}))
    assert reply["statusCode"] == 200, reply
    (_, biz), = emulator.calls
    assert biz["buyer_open_id"] == "074a1CcTG1LelxKe4xQC0zgNdId0nxi95b5lsNpazWYoCo5" and "buyer_id" not in biz


@pytest.mark.parametrize("change, message", [
    ({"buyerId": None}, "exactly one of buyerId or buyerOpenId"),
    ({"buyerOpenId": "074a1CcTG1LelxKe4xQC0zgNdId0nxi95b5lsNpazWYoCo5"}, "exactly one of buyerId or buyerOpenId"),
    ({"buyerId": "1088102177846881"}, "buyerId must be"),
    ({"buyerId": 2088102177846881}, "buyerId must be"),
    ({"opAppId": "mini"}, "opAppId must be"),
])
def test_a_wrong_buyer_is_400_and_writes_nothing(emulator, dynamodb, change, message):
    payload = {k: v for k, v in {**ORDER, **change}.items() if v is not None}
    reply = pay(pay_event(payload))
    assert reply["statusCode"] == 400 and message in json.loads(reply["body"])["msg"]
    assert stored_items(dynamodb) == [] and emulator.calls == []


def test_alipay_refusing_is_502_and_leaves_only_an_unpaid_row(emulator, store):
    emulator.answer_next = {"code": "40004", "msg": "Business Failed", "sub_code": "ACQ.BUYER_NOT_EXIST", "sub_msg": "no"}
    reply = pay(pay_event(ORDER))
    body = json.loads(reply["body"])
    assert reply["statusCode"] == 502 and body["data"] is None and "ACQ.BUYER_NOT_EXIST" in body["msg"]
    (item,) = stored_items(store._client)
    assert item["status"] == {"N": str(UNPAID)} and "reconcileAt" in item  # reconcile closes it


def test_unreachable_gateway_is_502(emulator, store):
    emulator.fail_next = gateway_module.GatewayError("gateway unreachable: timeout")
    assert pay(pay_event(ORDER))["statusCode"] == 502
    (item,) = stored_items(store._client)
    assert item["status"] == {"N": str(UNPAID)}
