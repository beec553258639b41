"""pay's channels and the return_url handler, through the real handlers on moto's DynamoDB."""
import json
from urllib.parse import urlencode

import pytest

from functions.pay.handler import handler as pay
from functions.pay_notify.handler import handler as pay_notify
from functions.pay_return.handler import handler as pay_return
from local import alipay, events
from shared.domain.orders import PAID, UNPAID

from tests import sdk_oracle as oracle
from tests.conftest import APP_ID, notify_event, pay_event, stored_items

RETURN_URL = "https://shop.example.com/pay/return"
ORDER = {"productId": "P1", "userId": "U1", "orderName": "数据恢复产品 A", "total_amount": "198.01"}


@pytest.fixture
def channels_env(env, monkeypatch):
    monkeypatch.setenv("ALIPAY_RETURN_URL", RETURN_URL)
    return env


def pay_on(channel):
    reply = pay(pay_event({**ORDER, "channel": channel} if channel else ORDER))
    return reply["statusCode"], json.loads(reply["body"])


@pytest.mark.parametrize("channel, method", [("page", "alipay.trade.page.pay"), ("wap", "alipay.trade.wap.pay")])
def test_page_and_wap_return_a_url_and_a_form_for_a_stored_order(channels_env, store, channel, method):
    status, body = pay_on(channel)
    assert status == 200, body
    data = body["data"]
    assert set(data) == {"payUrl", "payForm", "outTradeNo"}
    gateway, params = oracle.query(data["payUrl"])
    assert gateway == "https://openapi.alipay.com/gateway.do"
    assert params["method"] == method and params["return_url"] == RETURN_URL
    assert json.loads(params["biz_content"])["out_trade_no"] == data["outTradeNo"]
    _, action, fields = oracle.form(data["payForm"])
    assert {**action, **fields} == params  # the same signed request, posted
    order = store.get(data["outTradeNo"])
    assert order.status == UNPAID and order.total_cents == 19801


def test_app_stays_the_default_channel(channels_env, store):
    status, body = pay_on(None)
    assert status == 200 and set(body["data"]) == {"orderStr", "outTradeNo"}
    assert pay_on("app")[1]["data"].keys() == body["data"].keys()


@pytest.mark.parametrize("channel", ["qr", "APP", 1, ["page"]])
def test_unknown_channel_is_400_and_nothing_is_written(channels_env, dynamodb, channel):
    status, body = pay_on(channel)
    assert status == 400 and "channel" in body["msg"]
    assert stored_items(dynamodb) == []


def test_gateway_is_configurable(channels_env, store, monkeypatch):
    monkeypatch.setenv("ALIPAY_GATEWAY_URL", "http://127.0.0.1:3000/sandbox/gateway.do")
    _, body = pay_on("page")
    assert body["data"]["payUrl"].startswith("http://127.0.0.1:3000/sandbox/gateway.do?")


# --- the return_url -----------------------------------------------------------------------------

def return_params(out_trade_no, total_amount="198.01", **extra):
    """The sync return's fields as Alipay appends them to return_url (signed like a notify)."""
    params = {
        "charset": "utf-8", "out_trade_no": out_trade_no, "method": "alipay.trade.page.pay.return",
        "total_amount": total_amount, "trade_no": "2026112622001400000000000009", "auth_app_id": APP_ID,
        "version": "1.0", "app_id": APP_ID, "seller_id": "2088000000000001", "timestamp": "2026-11-26 10:06:00",
    }
    params.update(extra)
    return params


def return_event(params):
    return events.http_event("GET", "/pay/return", query=urlencode(params))


def test_a_verified_return_shows_the_stored_state_and_never_marks_paid(channels_env, store, alipay_keys):
    out_trade_no = pay_on("page")[1]["data"]["outTradeNo"]
    signed = alipay.sign_notify(return_params(out_trade_no), alipay_keys.private_key)
    page = pay_return(return_event(signed))
    assert page["statusCode"] == 200 and page["headers"]["Content-Type"].startswith("text/html")
    assert "支付结果确认中" in page["body"] and out_trade_no in page["body"]
    assert store.get(out_trade_no).status == UNPAID  # the return alone proves nothing

    notify = alipay.sign_notify(
        alipay.notify_params(app_id=APP_ID, out_trade_no=out_trade_no, total_amount="198.01"), alipay_keys.private_key
    )
    assert pay_notify(notify_event(notify))["body"] == "success"
    page = pay_return(return_event(signed))
    assert page["statusCode"] == 200 and "支付成功" in page["body"] and store.get(out_trade_no).status == PAID


@pytest.mark.parametrize("forge", ["other-key", "changed-amount", "no-sign", "other-app"])
def test_an_unverified_return_is_400_and_shows_no_order(channels_env, store, alipay_keys, app_keys, forge):
    out_trade_no = pay_on("page")[1]["data"]["outTradeNo"]
    params = return_params(out_trade_no, app_id="2021999999999999") if forge == "other-app" else return_params(out_trade_no)
    signed = alipay.sign_notify(params, (app_keys if forge == "other-key" else alipay_keys).private_key)
    if forge == "changed-amount":
        signed["total_amount"] = "0.01"
    if forge == "no-sign":
        del signed["sign"]
    page = pay_return(return_event(signed))
    assert page["statusCode"] == 400 and out_trade_no not in page["body"]
    assert store.get(out_trade_no).status == UNPAID


def test_a_return_for_an_unknown_order_is_404(channels_env, store, alipay_keys):
    signed = alipay.sign_notify(return_params("ORDER_404"), alipay_keys.private_key)
    assert pay_return(return_event(signed))["statusCode"] == 404
    assert stored_items(store._client) == []


def test_the_page_escapes_the_subject(channels_env, store, alipay_keys):
    reply = pay(pay_event({**ORDER, "orderName": "<script>alert(1)</script>", "channel": "wap"}))
    out_trade_no = json.loads(reply["body"])["data"]["outTradeNo"]
    page = pay_return(return_event(alipay.sign_notify(return_params(out_trade_no), alipay_keys.private_key)))
    assert "<script>alert(1)</script>" not in page["body"] and "&lt;script&gt;" in page["body"]


def test_a_return_url_with_a_query_string_is_a_configuration_error(channels_env, dynamodb, monkeypatch):
    """Alipay appends its signed parameters to return_url; ours would break every return's check."""
    monkeypatch.setenv("ALIPAY_RETURN_URL", RETURN_URL + "?shop=1")
    status, body = pay_on("page")
    assert status == 500 and body["data"] is None
    assert stored_items(dynamodb) == []
