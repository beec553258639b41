"""Issue 13 #1 on moto against the emulator: every PENDING refund reaches REFUNDED or FAILED by itself
(``shared/refund_settle.py``, ``functions/refund_settle``), found through the refunds-pending index."""
import io
import json
from contextlib import redirect_stdout
from datetime import timedelta

import pytest

from functions.order_status.handler import handler as order_status
from functions.refund_settle.handler import handler as refund_settle_handler
from local import events
from local.console import console_refund
from shared import refund_settle, refunds
from shared.alipay.gateway import GatewayError
from shared.aws import repository
from shared.domain import clock
from shared.domain.orders import PAID, REFUND_DONE, REFUND_FAILED, REFUND_PENDING, Order
from shared.domain.validation import RefundRequest

from tests.conftest import TABLE
from tests.functional.test_reconcile import Spy
from tests.emulated_alipay import EmulatedAlipay

ORDER = "ORDER_1795000000000_set"
TOTAL = 19801
POLICY = refund_settle.Policy(grace=timedelta(seconds=60))
LATER = timedelta(minutes=2)


@pytest.fixture
def fake(app_keys, alipay_keys):
    return EmulatedAlipay(app_keys, alipay_keys)


@pytest.fixture
def paid(store, fake):
    store.create(Order(ORDER, "P1", "U1", "order", TOTAL, status=PAID, trade_no="T1",
                       order_date=clock.iso(clock.now() - timedelta(hours=1))))
    fake.add_trade(ORDER, "198.01", "TRADE_SUCCESS")
    return store


def ask(store, fake, out_request_no, cents=5000):
    return refunds.refund(store, fake.gateway(), RefundRequest(ORDER, out_request_no, cents, "缺货"))


def settle(store, fake, after=LATER):
    return refund_settle.run(store, fake.gateway(), POLICY, now=clock.now() + after)


def calls(fake, method):
    return [biz for m, biz in fake.calls if m == method]


def index(client):
    """The refunds-pending index (a test-only Scan of it)."""
    return {i["orderNum"]["S"]: i for i in client.scan(TableName=TABLE, IndexName=repository.REFUNDS_INDEX)["Items"]}


def test_a_refund_whose_answer_was_lost_is_refunded_by_the_next_pass(paid, fake, dynamodb):
    fake.sandbox.lose_answers(1)  # Alipay refunds; its answer never arrives
    assert ask(paid, fake, "R1").code == 502
    assert paid.get(ORDER).refunds["R1"].status == REFUND_PENDING and set(index(dynamodb)) == {ORDER}

    young = settle(paid, fake, after=timedelta(seconds=10))  # within the grace time: not asked yet
    assert young.actions == {} and young.pending == 1 and calls(fake, "alipay.trade.fastpay.refund.query") == []

    report = settle(paid, fake)
    assert report.actions == {"refunded": 1} and report.pending == 0
    order = paid.get(ORDER)
    assert order.refunds["R1"].status == REFUND_DONE and order.refunds["R1"].refunded_at and order.refunded_cents == 5000
    assert index(dynamodb) == {}  # settled: out of the index
    assert [b["out_request_no"] for b in calls(fake, "alipay.trade.refund")] == ["R1"]  # asked once, never again
    assert calls(fake, "alipay.trade.fastpay.refund.query") == [
        {"out_trade_no": ORDER, "out_request_no": "R1", "query_options": ["gmt_refund_pay"]}]


def test_a_refund_that_never_reached_alipay_is_sent_again_with_the_same_out_request_no(paid, fake):
    fake.fail_next = GatewayError("gateway unreachable: timeout")  # before Alipay saw it
    assert ask(paid, fake, "R1").code == 502
    report = settle(paid, fake)
    assert report.actions == {"refunded_on_retry": 1}
    assert paid.get(ORDER).refunds["R1"].status == REFUND_DONE
    assert [b["out_request_no"] for b in calls(fake, "alipay.trade.refund")] == ["R1", "R1"]
    assert fake.trade(ORDER).extra["refunds"]["R1"]["refund_amount"] == "50.00"  # refunded once at Alipay


def test_a_refund_alipay_refuses_on_its_retry_is_failed_and_its_cents_given_back(paid, fake, store):
    """The issue's case: the first call got no answer, then the trade was refunded in full
    elsewhere; Alipay has no R1 and refuses its retry: FAILED with Alipay's reason."""
    fake.fail_next = GatewayError("gateway unreachable: timeout")
    assert ask(paid, fake, "R1", 10000).code == 502
    assert paid.get(ORDER).refunded_cents == 10000
    console_refund(fake.sandbox, {"out_trade_no": ORDER, "out_request_no": "CONSOLE_1"})  # all of it, in the console
    report = settle(paid, fake)
    assert report.actions == {"failed": 1} and report.pending == 0
    order = paid.get(ORDER)
    failed = order.refunds["R1"]
    assert failed.status == REFUND_FAILED and failed.reason.startswith("ACQ.") and order.refunded_cents == 0
    # A call with the same outRequestNo is told so; nothing is sent.
    again = ask(paid, fake, "R1", 10000)
    assert again.code == 422 and "refused" in again.msg and len(calls(fake, "alipay.trade.refund")) == 2
    shown = json.loads(order_status(events.http_event("GET", f"/orders/{ORDER}", None, {}, {"outTradeNo": ORDER}))["body"])["data"]
    assert shown["refundedAmount"] == 0
    assert [(r["outRequestNo"], r["status"], r["amount"]) for r in shown["refunds"]] == [("R1", "FAILED", 10000)]
    assert shown["refunds"][0]["reason"] == failed.reason and shown["refunds"][0]["refundedAt"] is None


def test_alipays_older_answer_without_refund_status_is_read_by_its_data(paid, fake):
    fake.sandbox.lose_answers(1)
    assert ask(paid, fake, "R1").code == 502
    fake.sandbox.refund_status_field = False
    assert settle(paid, fake).actions == {"refunded": 1}
    assert len(calls(fake, "alipay.trade.refund")) == 1  # the data alone means done: no retry


def test_another_refund_status_or_no_answer_leaves_it_pending_and_looks_later(paid, fake, dynamodb):
    fake.fail_next = GatewayError("gateway unreachable: timeout")
    assert ask(paid, fake, "R1").code == 502
    checked = index(dynamodb)[ORDER]["refundCheckAt"]["S"]
    fake.answer_next = {"code": "10000", "msg": "Success", "out_trade_no": ORDER, "out_request_no": "R1",
                        "refund_status": "REFUND_PROCESSING"}
    report = settle(paid, fake)
    assert report.actions == {"pending": 1} and report.pending == 1 and report.oldest_pending_seconds >= 120
    moved = index(dynamodb)[ORDER]["refundCheckAt"]["S"]
    assert moved > checked and paid.get(ORDER).refunds["R1"].status == REFUND_PENDING

    fake.fail_next = GatewayError("gateway unreachable: timeout")
    assert settle(paid, fake, after=timedelta(hours=2)).actions == {"error": 1}
    assert paid.get(ORDER).refunds["R1"].status == REFUND_PENDING and paid.get(ORDER).refunded_cents == 5000
    assert settle(paid, fake, after=timedelta(hours=4)).actions == {"refunded_on_retry": 1}


def test_a_refund_settled_meanwhile_by_its_notify_or_a_call_is_taken_out_without_asking(paid, fake, dynamodb):
    fake.sandbox.lose_answers(1)
    assert ask(paid, fake, "R1").code == 502
    assert ask(paid, fake, "R1").code == 200  # the caller's own retry settled it
    report = settle(paid, fake)
    assert report.actions == {} and index(dynamodb) == {} and calls(fake, "alipay.trade.fastpay.refund.query") == []


def test_pending_refunds_are_found_through_the_index_never_a_scan(paid, fake, dynamodb):
    spy = Spy(dynamodb)
    store = repository.DynamoOrderRepository(TABLE, spy)
    fake.sandbox.lose_answers(1)
    assert ask(store, fake, "R1").code == 502
    settle(store, fake)
    assert "scan" not in spy.ops and "query" in spy.ops


def test_the_handler_emits_the_pending_metrics(paid, fake, monkeypatch, app_keys, alipay_keys):
    fake.fail_next = GatewayError("gateway unreachable: timeout")
    assert ask(paid, fake, "R1").code == 502
    monkeypatch.setattr(refund_settle.Policy, "from_env", classmethod(lambda cls, environ=None: refund_settle.Policy(grace=timedelta(hours=1))))
    out = io.StringIO()
    with redirect_stdout(out):
        result = refund_settle_handler({}, None)
    [line] = [json.loads(line) for line in out.getvalue().splitlines() if line.startswith('{"_aws"')]
    assert line["RefundsPending"] == 1 and 0 <= line["RefundOldestPendingAge"] < 60 and result["pending"] == 1
    names = {m["Name"]: m["Unit"] for m in line["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert names == {"RefundsPending": "Count", "RefundOldestPendingAge": "Seconds"} and line["Service"]

