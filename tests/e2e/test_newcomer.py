"""What a newcomer types, as typed: `make invoke` / `make demo` / `make reconcile` mistakes give one
clear line (no traceback), and `make run`'s prices: the demo catalog, stored orders, PRICE_SOURCE."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import pytest

from tests.e2e.conftest import ROOT, free_port, http, stack_env, start, wait_until

PURCHASE = {"productId": "PROD_1", "userId": "USER_1", "orderName": "数据恢复产品 A"}

MAKES_OWN = re.compile(r"make(\[\d+\])?: \*\*\* ")  # "make[1]: ***" when run under make test

pytestmark = pytest.mark.skipif(not shutil.which("make"), reason="make is not installed")


def make(local_dir, port: int, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "--no-print-directory", *args], cwd=ROOT, env={**stack_env(port, local_dir), **env},
        capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL,
    )


def own_lines(result: subprocess.CompletedProcess) -> list:
    """The command's own output lines (make's "*** Error" line is make's, not ours)."""
    return [line for line in (result.stdout + result.stderr).splitlines() if line and not MAKES_OWN.match(line)]


@pytest.mark.parametrize("args, says", [
    ((), "make invoke needs FUNCTION=<name>, one of: add_order, "),
    (("FUNCTION=refnud",), "no function 'refnud' in serverless.yml; FUNCTION is one of: add_order, "),
    (("FUNCTION=refund", "EVENT={outTradeNo: 1}"), "EVENT is not JSON ("),
    (("FUNCTION=refund",), "no local stack on 127.0.0.1:"),
])
def test_make_invoke_mistakes_are_one_clear_line(local_dir, args, says):
    result = make(local_dir, free_port(), "invoke", *args)  # nothing listens on a fresh free port
    assert result.returncode != 0
    (line,) = own_lines(result)
    assert line.startswith(says) and "Traceback" not in result.stderr


def test_make_demo_without_a_stack_is_one_clear_line(local_dir):
    result = make(local_dir, free_port(), "demo")
    assert result.returncode != 0
    (line,) = own_lines(result)
    assert line.startswith("no local stack at http://127.0.0.1:") and "start it with `make run`" in line


def port_of(stack) -> int:
    return int(stack.url.rsplit(":", 1)[1])


def test_make_reconcile_right_after_a_payment_says_why_it_examined_nothing(stack, local_dir):
    status, reply = http("POST", f"{stack.url}/pay", json.dumps(PURCHASE).encode(), "application/json")
    assert status == 200, reply
    http("POST", f"{stack.url}/sandbox/app-pay?outcome=drop", reply["data"]["orderStr"].encode(), "text/plain")
    result = make(local_dir, port_of(stack), "reconcile")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["examined"] == 0
    assert "A new order waits RECONCILE_MIN_AGE_SECONDS (300 s" in result.stderr


def test_make_run_prices_from_its_demo_catalog(stack):
    status, reply = http("POST", f"{stack.url}/pay", json.dumps(PURCHASE).encode(), "application/json")
    assert status == 200, reply  # no total_amount: the catalog's 198.01
    assert '"total_amount":"198.01"' in reply["data"]["orderStr"].replace("%22", '"').replace("%3A", ":").replace("%2C", ",")
    status, reply = http("POST", f"{stack.url}/pay", json.dumps({**PURCHASE, "total_amount": "0.01"}).encode(), "application/json")
    assert status == 400 and "differs from the price of PROD_1 (198.01)" in reply["msg"]


def test_an_order_stored_with_make_invoke_is_paid_by_its_out_trade_no(stack, local_dir):
    event = json.dumps({"productId": "SKU-9", "userId": "USER_1", "orderName": "年度会员", "totalAmount": 2500})
    added = make(local_dir, port_of(stack), "invoke", "FUNCTION=add_order", f"EVENT={event}")
    assert added.returncode == 0, added.stderr
    number = json.loads(added.stdout)["data"]["orderNum"]
    status, reply = http("POST", f"{stack.url}/pay", json.dumps({"outTradeNo": number}).encode(), "application/json")
    assert status == 200 and reply["data"]["outTradeNo"] == number
    status, result = http("POST", f"{stack.url}/sandbox/app-pay", reply["data"]["orderStr"].encode(), "text/plain")
    assert status == 200 and result["resultStatus"] == "9000"
    status, trade = http("GET", f"{stack.url}/sandbox/trades/{number}")
    assert status == 200 and trade["total_amount"] == "25.00"


def test_price_source_client_from_the_environment_is_honoured_and_announced(local_dir, tmp_path):
    stack = start([sys.executable, "-m", "local.run"], free_port(), local_dir, tmp_path / "client.log", env={"PRICE_SOURCE": "client"})
    try:
        status, reply = http("POST", f"{stack.url}/pay", json.dumps({**PURCHASE, "productId": "ANY", "total_amount": "3.21"}).encode(),
                             "application/json")
        assert status == 200, reply
        assert stack.log_lines("PRICE_SOURCE=client: pay signs the total_amount the client sends")
        assert wait_until(lambda: stack.log_lines("Prices: the client's total_amount"), bool, 10)  # the banner follows /health
    finally:
        stack.stop()


def test_the_banners_curl_walk_through_buys_from_the_demo_catalog(stack):
    """The purchase `make run` prints for curl is one its own catalog sells (at the price it sends)."""
    banner = wait_until(lambda: stack.log.read_text(encoding="utf-8"), lambda text: "Walk-through" in text, 10)
    (payload,) = re.findall(r"-d '(\{.*?\})'", banner)
    status, reply = http("POST", f"{stack.url}/pay", payload.encode(), "application/json")
    assert status == 200, reply
