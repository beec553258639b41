"""Issue 11 #3 end to end on the local stack, over HTTP: the buyer pays, our notify endpoint fails
(DynamoDB refuses, ``POST /local/faults``), the merchant refunds the whole trade in Alipay's
console (``POST /sandbox/console/refund``), the refund's TRADE_CLOSED notify arrives first, and
the queued TRADE_SUCCESS is retried after it. The order ends paid and refunded at Alipay."""
from __future__ import annotations

import json
import sys

import pytest

from shared.aws import repository

from tests.e2e.conftest import free_port, http, start, wait_until
from tests.e2e.test_local_stack import app_pay, order, pay, trade

# Alipay's first retry (4 minutes) becomes 2.4 s: time for the console refund to go first.
SLOW_RETRIES = "0.01"


@pytest.fixture(scope="module")
def slow_stack(tmp_path_factory):
    running = start([sys.executable, "-m", "local.run"], free_port(), tmp_path_factory.mktemp("local"),
                    tmp_path_factory.mktemp("log") / "stack.log", env={"SANDBOX_TIME_SCALE": SLOW_RETRIES, "RECONCILE_INTERVAL_SECONDS": "0"})
    yield running
    running.stop()


def test_a_console_refund_overtaking_the_payment_notify_ends_paid_and_refunded(slow_stack):
    stack = slow_stack
    order_str, out_trade_no = pay(stack)
    arm = json.dumps({"dynamodb": {"fail_next": repository.DYNAMODB.attempts}}).encode()
    assert http("POST", f"{stack.url}/local/faults", arm, "application/json")[0] == 200
    assert app_pay(stack, order_str)["resultStatus"] == "9000"
    wait_until(lambda: trade(stack, out_trade_no), lambda t: [d["answer"] for d in t["deliveries"]] == ["fail"])
    assert order(stack, out_trade_no)[1]["data"]["status"] == 0  # TRADE_SUCCESS waits in Alipay's retry queue

    status, refunded = http("POST", f"{stack.url}/sandbox/console/refund",
                            json.dumps({"out_trade_no": out_trade_no}).encode(), "application/json")
    assert status == 200 and refunded["fund_change"] == "Y" and refunded["refund_fee"] == "198.01", refunded
    done = wait_until(lambda: trade(stack, out_trade_no), lambda t: len(t["deliveries"]) >= 3, seconds=20)
    assert done["status"] == "TRADE_CLOSED"
    handled = [line for line in stack.log_lines(f"notify {out_trade_no} -> ")]
    assert "success (TRADE_CLOSED: applied)" in handled[0], handled  # the refund's notify came first
    assert "success (TRADE_SUCCESS: already)" in handled[1], handled  # then the retried payment: a duplicate
    assert [(d["answer"], d["acknowledged"]) for d in done["deliveries"]] == [("fail", False), ("success", True), ("success", True)]

    status, body = order(stack, out_trade_no)
    data = body["data"]
    assert status == 200 and data["status"] == 1 and data["payDate"] and data["refundedAmount"] == 19801
    [refund] = data["refunds"]
    assert refund["outRequestNo"].startswith("CONSOLE") and refund["amount"] == 19801
    assert refund["status"] == "REFUNDED" and refund["madeAtAlipay"] is True and refund["refundedAt"]


def test_a_partial_console_refund_of_a_paid_order_is_recorded_once(slow_stack):
    stack = slow_stack
    order_str, out_trade_no = pay(stack)
    assert app_pay(stack, order_str)["resultStatus"] == "9000"
    wait_until(lambda: order(stack, out_trade_no)[1]["data"], lambda d: d["status"] == 1)
    for amount, biz_no in (("50.00", "BIZ_1"), ("50.00", "BIZ_1")):  # the second is a repeat of the first
        http("POST", f"{stack.url}/sandbox/console/refund",
             json.dumps({"out_trade_no": out_trade_no, "refund_amount": amount, "out_request_no": biz_no}).encode(), "application/json")
    data = wait_until(lambda: order(stack, out_trade_no)[1]["data"], lambda d: d["refundedAmount"] == 5000)
    assert data["status"] == 1 and [(r["outRequestNo"], r["amount"], r["madeAtAlipay"]) for r in data["refunds"]] == [("BIZ_1", 5000, True)]
