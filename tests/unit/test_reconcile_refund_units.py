"""Small pure pieces of reconcile and refunds: durations, schedules, the refund record, inputs."""
import zlib
from datetime import datetime, timedelta

import pytest

from local import schedule
from local.server import Function
from shared import reconcile
from shared.domain import validation
from shared.environment import ConfigError
from shared.domain.orders import (
    CLOSED, PAID, RECONCILE_SHARDS, REFUND_DONE, REFUND_PENDING, UNPAID, Due, Order, Refund, reconcile_shard,
)


@pytest.mark.parametrize("text,expected", [("30m", timedelta(minutes=30)), ("2h", timedelta(hours=2)), ("15d", timedelta(days=15))])
def test_timeout_express(text, expected):
    assert reconcile.timeout_express(text) == expected


@pytest.mark.parametrize("text", ["", "0m", "1c", "1.5h", "30", "m"])
def test_unsupported_timeout_express(text):
    with pytest.raises(ValueError):
        reconcile.timeout_express(text)


def test_backoff_doubles_from_the_base_up_to_the_cap():
    policy = reconcile.Policy(backoff=timedelta(minutes=1), backoff_max=timedelta(hours=1))
    assert [policy.delay(n) for n in range(1, 9)] == [timedelta(minutes=m) for m in (1, 2, 4, 8, 16, 32, 60, 60)]
    assert policy.delay(10**6) == timedelta(hours=1)  # no overflow however many looks


def test_looking_stops_after_15_days_or_the_late_pay_window():
    policy = reconcile.Policy(close_after=timedelta(minutes=30), late_pay_window=timedelta(hours=24))
    created = "2026-11-26T18:00:00+08:00"
    start = datetime.fromisoformat(created)
    assert policy.window_end(Due("O", created, UNPAID, created)) == start + timedelta(days=15)
    assert policy.window_end(Due("O", created, CLOSED, created)) == start + timedelta(hours=24, minutes=30)
    wide = reconcile.Policy(close_after=timedelta(days=10), late_pay_window=timedelta(days=10))
    assert wide.window_end(Due("O", created, CLOSED, created)) == start + reconcile.MAX_WINDOW


def test_policy_from_the_environment():
    policy = reconcile.Policy.from_env({"RECONCILE_BACKOFF_SECONDS": "2", "RECONCILE_BACKOFF_MAX_SECONDS": "8",
                                        "RECONCILE_LATE_PAY_WINDOW_SECONDS": "3600"})
    assert (policy.backoff, policy.backoff_max, policy.late_pay_window) == (
        timedelta(seconds=2), timedelta(seconds=8), timedelta(hours=1))
    assert reconcile.Policy.from_env({}) == reconcile.Policy()


@pytest.mark.parametrize("env", [{"RECONCILE_BACKOFF_SECONDS": "0"}, {"RECONCILE_LATE_PAY_WINDOW_SECONDS": str(16 * 86400)},
                                 {"RECONCILE_CLOSE_AFTER_SECONDS": str(15 * 86400 + 1)}])
def test_bad_policy(env):
    with pytest.raises(ConfigError):
        reconcile.Policy.from_env(env)


def test_first_look_is_min_age_after_creation():
    created = datetime.fromisoformat("2026-11-26T18:00:00+08:00")
    assert reconcile.first_look(created, {}) == "2026-11-26T18:05:00+08:00"
    assert reconcile.first_look(created, {"RECONCILE_MIN_AGE_SECONDS": "0"}) == "2026-11-26T18:00:00+08:00"


def test_shards_are_stable_and_spread():
    shards = [reconcile_shard(f"ORDER_{i}") for i in range(800)]
    assert set(shards) == set(range(RECONCILE_SHARDS))
    assert reconcile_shard("ORDER_1") == zlib.crc32(b"ORDER_1") % RECONCILE_SHARDS  # not the salted hash()


def test_an_order_is_in_the_reconcile_index_only_with_reconcile_at():
    order = Order("ORDER_1", "P", "U", "n", 1, order_date="2026-11-26T18:00:00+08:00")
    assert not {"reconcileShard", "reconcileAt", "reconcileTries"} & set(order.to_dict())
    due = Order(**{**order.__dict__, "reconcile_at": "2026-11-26T18:05:00+08:00", "reconcile_tries": 2})
    item = due.to_dict()
    assert (item["reconcileShard"], item["reconcileAt"], item["reconcileTries"]) == (
        reconcile_shard("ORDER_1"), "2026-11-26T18:05:00+08:00", 2)
    assert Order.from_dict(item) == due


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
