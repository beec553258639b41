"""The README's commands themselves: `make run` serves, `make demo` walks through it, SIGTERM stops."""
import json
import re
import shutil
import subprocess
import sys

import pytest

from tests.e2e.conftest import ROOT, free_port, http, stack_env, start


@pytest.fixture
def make_run(local_dir, tmp_path):
    if not shutil.which("make"):
        pytest.skip("make is not installed")
    running = start(["make", "--no-print-directory", "run"], free_port(), local_dir, tmp_path / "make-run.log")
    yield running
    running.stop()


def test_make_run_then_make_demo(make_run, local_dir):
    assert "POST /pay" in " ".join(http("GET", f"{make_run.url}/health")[1]["routes"])
    port = make_run.url.rsplit(":", 1)[1]
    demo = subprocess.run(
        ["make", "--no-print-directory", "demo"], cwd=ROOT, env=stack_env(int(port), local_dir),
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert '"status": 1' in demo.stdout and "Done" in demo.stdout
    banner = make_run.log.read_text(encoding="utf-8")
    assert f"local stack on {make_run.url}" in banner and "curl -s -X POST" in banner
    assert f"Checkout: open {make_run.url}/" in banner
    # readable lines, one per event: Shanghai time, order, amount, who, what (LOG_FORMAT=json: Lambda's)
    issued = [line for line in banner.splitlines() if re.fullmatch(r"\d\d:\d\d:\d\d ORDER_\w+ ¥\d+\.\d\d payments  payment issued.*", line)]
    applied = [line for line in banner.splitlines() if re.fullmatch(r"\d\d:\d\d:\d\d ORDER_\w+ ¥\d+\.\d\d pay_notify  notify .* -> success .*", line)]
    assert issued and applied, banner[-2000:]
    assert not [line for line in banner.splitlines() if line.startswith("{")]  # no JSON lines by default

    make_run.stop()
    assert make_run.process.returncode == 0 and make_run.log_lines("local stack stopped")  # a clean stop


def test_log_format_json_shows_the_json_lines_lambda_logs(local_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("LOG_FORMAT", "json")
    running = start([sys.executable, "-m", "local.run"], free_port(), local_dir, tmp_path / "json.log")
    try:
        body = json.dumps({"productId": "PROD_DEMO", "userId": "USER_1", "orderName": "Demo", "total_amount": "0.01"}).encode()  # local/catalog.json
        status, reply = http("POST", f"{running.url}/pay", body, "application/json")
        assert status == 200
        lines = [json.loads(line) for line in running.log.read_text(encoding="utf-8").splitlines() if line.startswith("{")]
    finally:
        running.stop()
    logged = [line for line in lines if "_aws" not in line]  # EMF metric lines are JSON too (shared/aws/metrics.py)
    assert [line for line in lines if "_aws" in line and line.get("PaymentCreated") == 1]  # pay's metrics line, as Lambda prints it
    issued = [line for line in logged if line["message"].startswith("payment issued")]
    assert [(line["order_num"], line["total_amount"], line["level"]) for line in issued] == [(reply["data"]["outTradeNo"], "0.01", "INFO")]
    assert "function_request_id" in issued[0] and "timestamp" in issued[0]
