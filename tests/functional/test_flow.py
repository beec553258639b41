"""pay -> Alipay pays -> notify -> paid, through the real handlers on moto's DynamoDB."""
import json
from urllib.parse import parse_qsl

from functions.pay.handler import handler as pay
from functions.pay_notify.handler import handler as pay_notify
from local import alipay
from shared.domain.orders import PAID, UNPAID

from tests.conftest import APP_ID, pay_event, notify_event


def test_pay_then_notify_marks_the_order_paid_once(store, alipay_keys):
    reply = pay(pay_event({"productId": "P1", "userId": "U1", "orderName": "数据恢复产品 A", "total_amount": "198.01"}))
    assert reply["statusCode"] == 200, reply
    body = json.loads(reply["body"])
    out_trade_no = body["data"]["outTradeNo"]
    params = dict(parse_qsl(body["data"]["orderStr"]))
    assert json.loads(params["biz_content"])["out_trade_no"] == out_trade_no
    assert store.get(out_trade_no).status == UNPAID

    notify = alipay.sign_notify(
        alipay.notify_params(app_id=APP_ID, out_trade_no=out_trade_no, total_amount="198.01"), alipay_keys.private_key
    )
    first = pay_notify(notify_event(notify))
    again = pay_notify(notify_event(notify))
    assert (first["body"], again["body"]) == ("success", "success")
    order = store.get(out_trade_no)
    assert order.status == PAID and order.trade_no == notify["trade_no"] and order.pay_date
