"""Reconcile and refunds end to end: separate stack processes, real HTTP, the emulator's gateway.

One stack runs reconcile on a fast local schedule (RECONCILE_INTERVAL_SECONDS); the other has
the schedule off and is driven by `make reconcile` and direct invocation (/local/invoke/...).
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from tests.e2e.conftest import ROOT, free_port, http, stack_env, start, wait_until
from tests.e2e.test_local_stack import app_pay, order, pay, trade

CLOSE_AFTER = 2  # seconds: "timeout_express" shortened for the test


def stack_with(env: dict, local_dir, log):
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        return start([sys.executable, "-m", "local.run"], free_port(), local_dir, log)


@pytest.fixture(scope="module")
def scheduled(local_dir, tmp_path_factory):
    running = stack_with(
        {"RECONCILE_INTERVAL_SECONDS": "0.3", "RECONCILE_MIN_AGE_SECONDS": "0", "RECONCILE_CLOSE_AFTER_SECONDS": str(CLOSE_AFTER),
         "RECONCILE_BACKOFF_SECONDS": "1", "RECONCILE_BACKOFF_MAX_SECONDS": "1"},
        local_dir, tmp_path_factory.mktemp("log") / "scheduled.log",
    )
    yield running
    running.stop()


@pytest.fixture(scope="module")
def manual(local_dir, tmp_path_factory):
    running = stack_with(
        {"RECONCILE_INTERVAL_SECONDS": "0", "RECONCILE_MIN_AGE_SECONDS": "0"},
        local_dir, tmp_path_factory.mktemp("log") / "manual.log",
    )
    yield running
    running.stop()


def status_of(stack, out_trade_no):
    return order(stack, out_trade_no)[1]["data"]["status"]


def test_a_dropped_notify_is_recovered_by_the_scheduled_reconcile(scheduled):
    order_str, out_trade_no = pay(scheduled)
    assert app_pay(scheduled, order_str, "?outcome=drop")["resultStatus"] == "9000"
    assert wait_until(lambda: status_of(scheduled, out_trade_no), lambda s: s == 1) == 1
    assert trade(scheduled, out_trade_no)["deliveries"] == []  # no notify ever arrived: reconcile did it
    assert scheduled.log_lines(f"reconcile: {out_trade_no} -> TRADE_SUCCESS")


def test_an_abandoned_order_is_closed_by_the_scheduled_reconcile(scheduled):
    _, out_trade_no = pay(scheduled)  # the app never opens Alipay: ACQ.TRADE_NOT_EXIST
    assert status_of(scheduled, out_trade_no) == 0
    assert wait_until(lambda: status_of(scheduled, out_trade_no), lambda s: s == 2, seconds=CLOSE_AFTER + 20) == 2
    assert http("GET", f"{scheduled.url}/sandbox/trades/{out_trade_no}")[0] == 404
    assert scheduled.log_lines(f"reconcile: {out_trade_no} -> TRADE_CLOSED (expired, Alipay knows no trade; closed here")


def test_a_late_payment_after_the_close_is_found_though_its_notify_is_dropped(scheduled):
    """Closed here because Alipay knew no trade; the app still holds the orderStr and the buyer
    pays it later, and that notify is lost too: the order's later looks find the payment."""
    order_str, out_trade_no = pay(scheduled)
    assert wait_until(lambda: status_of(scheduled, out_trade_no), lambda s: s == 2, seconds=CLOSE_AFTER + 20) == 2
    assert app_pay(scheduled, order_str, "?outcome=drop")["resultStatus"] == "9000"
    assert wait_until(lambda: status_of(scheduled, out_trade_no), lambda s: s == 1) == 1
    assert trade(scheduled, out_trade_no)["deliveries"] == []
    assert scheduled.log_lines(f"order {out_trade_no} was closed but Alipay reports it paid")


def test_make_reconcile_runs_one_pass_against_the_running_stack(manual, local_dir):
    if not shutil.which("make"):
        pytest.skip("make is not installed")
    order_str, out_trade_no = pay(manual)
    assert app_pay(manual, order_str, "?outcome=drop")["resultStatus"] == "9000"
    assert status_of(manual, out_trade_no) == 0 and not manual.log_lines("reconcile pass")  # no schedule here
    port = manual.url.rsplit(":", 1)[1]
    done = subprocess.run(["make", "--no-print-directory", "reconcile"], cwd=ROOT, env=stack_env(int(port), local_dir),
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout[done.stdout.index("{"):])
    assert report["actions"].get("paid") == 1 and report["complete"]
    assert status_of(manual, out_trade_no) == 1


def test_the_scheduled_reconcile_fans_out_through_lambdas_invoke_api(manual):
    """`make invoke FUNCTION=reconcile`: the dispatcher's real boto3 ``lambda.invoke(Event)`` reaches the
    local stack's Invoke API, which runs the shard's worker on a thread; the order it was due for settles."""
    from shared.domain.orders import reconcile_shard

    order_str, out_trade_no = pay(manual)
    assert app_pay(manual, order_str, "?outcome=drop")["resultStatus"] == "9000"
    result = invoke(manual, "reconcile", {})
    assert reconcile_shard(out_trade_no) in result["dispatched"] and result["failed"] == [], result
    assert result["oldestDueAgeSeconds"] >= 0
    assert wait_until(lambda: status_of(manual, out_trade_no), lambda s: s == 1) == 1
    assert wait_until(lambda: manual.log_lines("reconcile pass"), bool)
    status, _ = http("POST", f"{manual.url}/2015-03-31/functions/alipay-app-pay-local-nope/invocations", b"{}",
                     "application/json")
    assert status == 404


def invoke(stack, function, event):
    status, result = http("POST", f"{stack.url}/local/invoke/{function}", json.dumps(event).encode(), "application/json")
    assert status == 200
    return result


def test_refunds_and_their_notifies_leave_the_order_paid(manual):
    order_str, out_trade_no = pay(manual)
    assert app_pay(manual, order_str)["resultStatus"] == "9000"
    assert wait_until(lambda: status_of(manual, out_trade_no), lambda s: s == 1) == 1

    partial = invoke(manual, "refund", {"outTradeNo": out_trade_no, "outRequestNo": "R1", "refundAmount": 1000})
    assert partial["code"] == 200 and partial["data"]["refundedAmount"] == 1000, partial
    again = invoke(manual, "refund", {"outTradeNo": out_trade_no, "outRequestNo": "R1", "refundAmount": 1000})
    assert again["code"] == 200 and again["msg"] == "already refunded"
    rest = invoke(manual, "refund", {"outTradeNo": out_trade_no, "outRequestNo": "R2"})
    assert rest["code"] == 200 and rest["data"]["amount"] == 18801 and rest["data"]["refundedAmount"] == 19801
    assert invoke(manual, "refund", {"outTradeNo": out_trade_no, "outRequestNo": "R3", "refundAmount": 1})["code"] == 409

    ledger = wait_until(lambda: trade(manual, out_trade_no),
                        lambda t: sum(d["acknowledged"] for d in t["deliveries"]) == 3)  # paid + two refunds
    assert ledger["status"] == "TRADE_CLOSED" and sorted(ledger["extra"]["refunds"]) == ["R1", "R2"]
    assert [d["answer"] for d in ledger["deliveries"]] == ["success"] * 3
    handled = manual.log_lines(f"notify {out_trade_no} -> success")
    # Each refund's notify names it (out_biz_no = our outRequestNo). Whichever lands first, our
    # refund call's settling write or Alipay's notify, records it; the other finds it recorded
    # ("already"). Either way each refund counts once and the order stays paid.
    assert len(handled) == 3  # the payment and both refunds' notifies, each answered success
    assert sum("TRADE_SUCCESS: applied" in line for line in handled) in (1, 2)  # the payment, maybe R1's settle
    assert any("TRADE_CLOSED: " in line for line in handled)  # the full refund's notify
    data = order(manual, out_trade_no)[1]["data"]
    assert data["status"] == 1 and data["refundedAmount"] == 19801
    assert sorted((r["outRequestNo"], r["amount"], r["status"]) for r in data["refunds"]) == [
        ("R1", 1000, "REFUNDED"), ("R2", 18801, "REFUNDED")]


def test_invoking_an_unknown_function_is_404(manual):
    assert http("POST", f"{manual.url}/local/invoke/nope", b"{}", "application/json")[0] == 404
