"""functions/order_status on moto: the stored status, 404 for unknown or other users' orders."""
import json

import pytest

from functions.order_status.handler import handler as order_status
from local import events
from shared.domain.orders import PAID, Order

ORDER = "ORDER_1795000000000_abc"


def get(out_trade_no, sub=None):
    event = events.http_event("GET", f"/orders/{out_trade_no}", path_parameters={"outTradeNo": out_trade_no}, route="/orders/{outTradeNo}")
    if sub is not None:
        event["requestContext"]["authorizer"] = {"jwt": {"claims": {"sub": sub}, "scopes": None}}
    reply = order_status(event)
    if reply["statusCode"] in (200, 404):
        assert reply["headers"]["Cache-Control"] == "no-store"  # a status must never be served stale
    return reply["statusCode"], json.loads(reply["body"])


@pytest.fixture
def order(store):
    store.create(Order(ORDER, "P1", "U1", "subject", 19801))
    return store


def test_unpaid_order(order):
    assert get(ORDER) == (200, {"code": 200, "data": {"outTradeNo": ORDER, "status": 0, "totalAmount": 19801, "payDate": None, "refundedAmount": 0, "refunds": []}, "msg": "ok"})


def test_paid_order_shows_the_pay_date(order):
    order.mark_paid(ORDER, 19801, "T1", "2026-11-26T21:46:15+08:00")
    status, body = get(ORDER)
    assert status == 200 and body["data"]["status"] == PAID and body["data"]["payDate"] == "2026-11-26T21:46:15+08:00"


def test_unknown_order_is_404(store):
    assert get("ORDER_1_unknown") == (404, {"code": 404, "data": None, "msg": "order not found"})


def test_the_owner_sees_the_order(order):
    assert get(ORDER, sub="U1")[0] == 200


def test_another_user_gets_the_same_404_as_for_an_unknown_order(order):
    assert get(ORDER, sub="U2") == get("ORDER_1_unknown", sub="U2")


@pytest.mark.parametrize("bad", ["ORDER-1", "A" * 65, "x y"])
def test_malformed_numbers_are_400(store, bad):
    status, body = get(bad)
    assert status == 400 and "outTradeNo" in body["msg"]


def test_missing_table_config_is_500(env, monkeypatch):
    monkeypatch.delenv("ORDER_TABLE")
    assert get(ORDER)[0] == 500
