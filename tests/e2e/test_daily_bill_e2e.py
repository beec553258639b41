"""The daily bill end to end on the local stack: pay some orders, drop a notify, run
`make invoke FUNCTION=bill_reconcile` for today's bill (downloaded over HTTP from the emulator),
read the report, then plant discrepancies in the emulator's bill and run it again."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import pytest

from shared.domain import clock

from tests.e2e.conftest import ROOT, free_port, http, stack_env, start, wait_until
from tests.e2e.test_local_stack import app_pay, order, pay


@pytest.fixture(scope="module")
def quiet(local_dir, tmp_path_factory):
    """A stack whose reconcile never runs: only the bill can find the dropped notify."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RECONCILE_INTERVAL_SECONDS", "0")
        running = start([sys.executable, "-m", "local.run"], free_port(), local_dir, tmp_path_factory.mktemp("log") / "bill.log")
    yield running
    running.stop()


def status_of(stack, out_trade_no):
    return order(stack, out_trade_no)[1]["data"]["status"]


def make_invoke(stack, local_dir, event) -> dict:
    if not shutil.which("make"):
        pytest.skip("make is not installed")
    port = stack.url.rsplit(":", 1)[1]
    done = subprocess.run(
        ["make", "--no-print-directory", "invoke", "FUNCTION=bill_reconcile", f"EVENT={json.dumps(event)}"],
        cwd=ROOT, env=stack_env(int(port), local_dir), capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    start = re.search(r"^\{$", done.stdout, re.M)  # the result's first line (make no longer echoes the command)
    assert start, done.stdout
    return json.loads(done.stdout[start.start():])


def test_a_dropped_notify_is_found_on_todays_bill_and_the_report_says_so(quiet, local_dir):
    today = clock.now().date().isoformat()
    paid = []
    for _ in range(2):
        order_str, out_trade_no = pay(quiet)
        assert app_pay(quiet, order_str)["resultStatus"] == "9000"
        paid.append(out_trade_no)
    order_str, dropped = pay(quiet)
    assert app_pay(quiet, order_str, "?outcome=drop")["resultStatus"] == "9000"
    for out_trade_no in paid:
        assert wait_until(lambda: status_of(quiet, out_trade_no), lambda s: s == 1) == 1
    assert status_of(quiet, dropped) == 0

    summary = make_invoke(quiet, local_dir, {"date": today})
    assert summary["bill"]["found"] is True and summary["bill"]["trades"] >= 3
    assert summary["counts"]["paid_at_alipay"] == 1 and summary["discrepancies"] == 1
    assert summary["report"] == f"s3://alipay-app-pay-local-bills/bills/{today}.json"
    assert status_of(quiet, dropped) == 1  # applied through the notify's transition
    status, report = http("GET", f"{quiet.url}/local/bills/{today}")
    assert status == 200 and report["billDate"] == today
    [item] = report["items"]
    assert (item["kind"], item["outTradeNo"], item["action"]) == ("paid_at_alipay", dropped, "applied")
    assert quiet.log_lines(f"paid_at_alipay {dropped}")

    again = make_invoke(quiet, local_dir, {"date": today})
    assert again["discrepancies"] == 0 and again["matched"] == summary["matched"] + 1

    planted = {"date": today, "omit": [paid[0]], "amounts": {paid[1]: "0.02"},
               "extra": [{"out_trade_no": "ORDER_FROM_ELSEWHERE", "total_amount": "8.88"}]}
    assert http("POST", f"{quiet.url}/sandbox/bills/plant", json.dumps(planted).encode(), "application/json")[0] == 200
    third = make_invoke(quiet, local_dir, {"date": today})
    assert {k: v for k, v in third["counts"].items() if v} == {"missing_from_bill": 1, "amount_mismatch": 1, "unknown_order": 1}
    assert http("DELETE", f"{quiet.url}/sandbox/bills/plant", json.dumps({"date": today}).encode(), "application/json")[0] == 200


def test_a_damaged_bill_fails_the_run_and_leaves_the_last_report(quiet, local_dir):
    today = clock.now().date().isoformat()
    before = http("GET", f"{quiet.url}/local/bills/{today}")
    assert http("POST", f"{quiet.url}/sandbox/bills/plant", json.dumps({"date": today, "damage": "truncate"}).encode(),
                "application/json")[0] == 200
    status, result = http("POST", f"{quiet.url}/local/invoke/bill_reconcile", json.dumps({"date": today}).encode(), "application/json")
    assert status == 200 and result["errorType"] == "BillFormatError" and "truncated" in result["errorMessage"]
    assert http("GET", f"{quiet.url}/local/bills/{today}") == before
    http("DELETE", f"{quiet.url}/sandbox/bills/plant", json.dumps({"date": today}).encode(), "application/json")


def test_bad_events_and_expired_links_are_refused(quiet):
    status, result = http("POST", f"{quiet.url}/local/invoke/bill_reconcile", b'{"date": "2026-02-30"}', "application/json")
    assert result["errorType"] == "ValueError"
    assert http("GET", f"{quiet.url}/sandbox/bills/download?token=forged", parse=False)[0] == 403
    assert http("POST", f"{quiet.url}/sandbox/bills/plant", b'{"date": "x"}', "application/json")[0] == 400
    assert http("GET", f"{quiet.url}/local/bills/1999-01-01")[0] == 404
