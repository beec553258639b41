"""Issue 13 #1 end to end on the local stack, over HTTP: Alipay refunds but its answer is lost
(``POST /sandbox/gateway/lost-answers``), the refund's notify fails on our side too
(``POST /local/faults`` with ``after``), and ``refund_settle`` — invoked as ``make invoke
FUNCTION=refund_settle`` does, or on its local schedule — settles the refund by itself."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.e2e.conftest import ROOT, free_port, http, start, wait_until
from tests.e2e.test_local_stack import app_pay, order, pay, trade


def stack_with(tmp_path_factory, **env):
    return start([sys.executable, "-m", "local.run"], free_port(), tmp_path_factory.mktemp("local"),
                 tmp_path_factory.mktemp("log") / "stack.log",
                 env={"SANDBOX_TIME_SCALE": "0.01", "RECONCILE_INTERVAL_SECONDS": "0", "REFUND_SETTLE_GRACE_SECONDS": "0", **env})


@pytest.fixture(scope="module")
def manual(tmp_path_factory):
    running = stack_with(tmp_path_factory, REFUND_SETTLE_INTERVAL_SECONDS="0")
    yield running
    running.stop()


def paid_order(stack) -> str:
    order_str, out_trade_no = pay(stack)
    assert app_pay(stack, order_str)["resultStatus"] == "9000"
    wait_until(lambda: order(stack, out_trade_no)[1]["data"], lambda d: d["status"] == 1)
    return out_trade_no


def invoke(stack, function: str, event: dict):
    status, result = http("POST", f"{stack.url}/local/invoke/{function}", json.dumps(event).encode(), "application/json")
    assert status == 200, result
    return result


def lose_the_refund_answer(stack, out_trade_no: str, still_pending: bool = True) -> None:
    """The refund reaches Alipay, its answer is lost, and our endpoint fails the refund's notify."""
    assert http("POST", f"{stack.url}/sandbox/gateway/lost-answers", b'{"next": 1}', "application/json") == (200, {"next": 1})
    arm = {"dynamodb": {"after": 3, "fail_next": 2}}  # the refund call's read and reservation (two conditional tries) pass; the notify's write fails
    assert http("POST", f"{stack.url}/local/faults", json.dumps(arm).encode(), "application/json")[0] == 200
    result = invoke(stack, "refund", {"outTradeNo": out_trade_no, "outRequestNo": "R1", "refundAmount": 5000})
    assert result["code"] == 502 and result["data"]["status"] == "PENDING", result
    wait_until(lambda: trade(stack, out_trade_no), lambda t: [d["answer"] for d in t["deliveries"]][-1:] == ["fail"])
    if still_pending:  # (on the 1 s schedule a pass may already have settled it)
        data = order(stack, out_trade_no)[1]["data"]
        assert data["refundedAmount"] == 5000 and [(r["outRequestNo"], r["status"]) for r in data["refunds"]] == [("R1", "PENDING")]
    assert trade(stack, out_trade_no)["extra"]["refunds"]["R1"]["refund_amount"] == "50.00"  # Alipay did refund


def test_make_invoke_refund_settle_settles_a_refund_whose_answer_was_lost(manual):
    out_trade_no = paid_order(manual)
    lose_the_refund_answer(manual, out_trade_no)
    run = subprocess.run([sys.executable, "-m", "local.invoke", "refund_settle", "--port", manual.url.rsplit(":", 1)[1]],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["actions"] == {"refunded": 1}
    data = order(manual, out_trade_no)[1]["data"]
    [refund] = data["refunds"]
    assert data["refundedAmount"] == 5000 and refund["status"] == "REFUNDED" and refund["refundedAt"]
    # its EMF line, as make run prints it (local/logformat.py: "… metrics  <service> RefundsPending=0 …")
    assert [line for line in manual.log_lines(" metrics  ") if " RefundsPending=0 " in line]
    # Alipay's retried notify then finds it settled.
    done = wait_until(lambda: trade(manual, out_trade_no), lambda t: t["deliveries"][-1]["acknowledged"], seconds=20)
    assert done["deliveries"][-1]["answer"] == "success"
    assert order(manual, out_trade_no)[1]["data"] == data
    assert http("GET", f"{manual.url}/sandbox/gateway/lost-answers") == (200, {"next": 0})


def test_the_local_schedule_settles_it_by_itself(tmp_path_factory):
    stack = stack_with(tmp_path_factory, REFUND_SETTLE_INTERVAL_SECONDS="1", SANDBOX_TIME_SCALE="1")  # notify retries far away
    try:
        out_trade_no = paid_order(stack)
        lose_the_refund_answer(stack, out_trade_no, still_pending=False)
        data = wait_until(lambda: order(stack, out_trade_no)[1]["data"], lambda d: d["refunds"][0]["status"] == "REFUNDED", seconds=30)
        assert data["refunds"][0]["status"] == "REFUNDED" and data["refundedAmount"] == 5000
        # The pass settles it, unless Alipay's own refund notify (out_biz_no R1) landed first and
        # recorded it: the two race, and either way the refund counts once (not lost, not doubled).
        by_pass = stack.log_lines("refund_settle: " + out_trade_no + "/R1 REFUNDED")
        applied = [line for line in stack.log_lines(f"notify {out_trade_no} -> success") if ": applied" in line]
        assert by_pass or len(applied) >= 2, (by_pass, applied)  # the payment's notify, then the refund's
    finally:
        stack.stop()


def test_the_lost_answers_knob_refuses_what_it_cannot_set(manual):
    for bad in (b'{"next": -1}', b'{"next": "2"}', b'{"next": 101}', b"[]", b"{"):
        status, body = http("POST", f"{manual.url}/sandbox/gateway/lost-answers", bad, "application/json")
        assert status == 400 and body["message"], bad
