"""Small pure pieces of reconcile and refunds: durations, schedules, the refund record, inputs."""
from datetime import timedelta

import pytest

from local import schedule
from local.server import Function
from shared import reconcile, validation
from shared.orders import PAID, REFUND_DONE, REFUND_PENDING, Order, Refund


@pytest.mark.parametrize("text,expected", [("30m", timedelta(minutes=30)), ("2h", timedelta(hours=2)), ("15d", timedelta(days=15))])
def test_timeout_express(text, expected):
    assert reconcile.timeout_express(text) == expected


@pytest.mark.parametrize("text", ["", "0m", "1c", "1.5h", "30", "m"])
def test_unsupported_timeout_express(text):
    with pytest.raises(ValueError):
        reconcile.timeout_express(text)


@pytest.mark.parametrize("value", [None, {"orderNum": "ORDER_1", "orderDate": "2026-11-26T18:00:00+08:00"}])
def test_cursor_round_trip(value):
    assert reconcile.parse_cursor(value) == value


@pytest.mark.parametrize("value", ["x", {"orderNum": "ORDER_1"}, {"orderNum": 1, "orderDate": "d"}])
def test_bad_cursor(value):
    with pytest.raises(ValueError):
        reconcile.parse_cursor(value)


def test_order_with_refunds_round_trips_through_its_item():
    order = Order("ORDER_1", "P", "U", "n", 19801, status=PAID, refunded_cents=1500, refunds={
        "R1": Refund(1000, REFUND_DONE, "2026-11-26T19:00:00+08:00", "2026-11-26T19:00:01+08:00", "缺货"),
        "R2": Refund(500, REFUND_PENDING, "2026-11-26T19:05:00+08:00"),
    })
    item = order.to_dict()
    assert item["refundedAmount"] == 1500 and item["refunds"]["R2"] == {"amount": 500, "status": "PENDING", "requestedAt": "2026-11-26T19:05:00+08:00"}
    assert Order.from_dict(item) == order
    assert "refunds" not in Order("ORDER_2", "P", "U", "n", 1).to_dict()  # unrefunded items are unchanged


def test_refund_request():
    request = validation.refund_request({"outTradeNo": "ORDER_1", "outRequestNo": "R_1", "refundAmount": 1230, "refundReason": "缺货"})
    assert request == validation.RefundRequest("ORDER_1", "R_1", 1230, "缺货")
    assert validation.refund_request({"outTradeNo": "ORDER_1", "outRequestNo": "R_1"}).cents is None
    uuid = "0b7c6f9e-6a43-4f7e-9d64-2f1c8f2b8a51"
    assert validation.refund_request({"outTradeNo": "ORDER_1", "outRequestNo": uuid}).out_request_no == uuid


@pytest.mark.parametrize("event", [
    {"outRequestNo": "R"}, {"outTradeNo": "O"}, {"outTradeNo": "O", "outRequestNo": "R 1"}, {"outTradeNo": "O-1", "outRequestNo": "R"},
    {"outTradeNo": "O", "outRequestNo": "R" * 65}, {"outTradeNo": "O", "outRequestNo": "R", "refundAmount": 1.5},
    {"outTradeNo": "O", "outRequestNo": "R", "refundAmount": True}, {"outTradeNo": "O", "outRequestNo": "R", "refundAmount": -1},
    {"outTradeNo": "O", "outRequestNo": "R", "refundReason": "x" * 257}, "O",
])
def test_bad_refund_requests(event):
    with pytest.raises(validation.InvalidInput):
        validation.refund_request(event)


@pytest.mark.parametrize("expression,seconds", [("rate(5 minutes)", 300), ("rate(1 minute)", 60), ("rate(2 hours)", 7200), ("rate(1 day)", 86400)])
def test_schedule_rates(expression, seconds):
    assert schedule.rate_seconds(expression) == seconds


def test_schedule_interval_from_serverless_yml_or_the_environment():
    function = Function("reconcile", lambda event, context: None, 120.0, ("rate(5 minutes)",))
    assert schedule.interval(function, {}) == 300
    assert schedule.interval(function, {"RECONCILE_INTERVAL_SECONDS": "2.5"}) == 2.5
    assert schedule.interval(function, {"RECONCILE_INTERVAL_SECONDS": "0"}) is None
    assert schedule.interval(Function("pay", lambda e, c: None, 10.0, ()), {}) is None
    with pytest.raises(ValueError):
        schedule.rate_seconds("cron(0 * * * ? *)")
