"""Order events on `make run`: the stream of moto's Order table, the real publisher, the bus,
`GET /local/events` and LOCAL_EVENTS_WEBHOOK, over real HTTP."""
from __future__ import annotations

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from shared.aws import repository

from tests.e2e.conftest import free_port, http, start, wait_until
from tests.e2e.test_local_stack import acknowledged, app_pay, pay


class Webhook(ThreadingHTTPServer):
    """The developer's own endpoint: records every POSTed event."""

    def __init__(self) -> None:
        self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(handler) -> None:  # noqa: N805 - the server is self here
                length = int(handler.headers.get("Content-Length") or 0)
                self.received.append(json.loads(handler.rfile.read(length)))
                handler.send_response(204)
                handler.end_headers()

            def log_message(handler, *args) -> None:  # noqa: N805
                pass

        super().__init__(("127.0.0.1", 0), Handler)


@pytest.fixture(scope="module")
def webhook():
    server = Webhook()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


@pytest.fixture(scope="module")
def stack(webhook, local_dir, tmp_path_factory):
    monkey = pytest.MonkeyPatch()
    monkey.setenv("LOCAL_EVENTS_WEBHOOK", f"http://127.0.0.1:{webhook.server_address[1]}/events")
    try:
        running = start([sys.executable, "-m", "local.run"], free_port(), local_dir, tmp_path_factory.mktemp("log") / "stack.log")
    finally:
        monkey.undo()
    yield running
    running.stop()


def events_of(stack, out_trade_no: str, count: int) -> list:
    """The order's events once ``count`` arrived, after a pause long enough for any extra one."""
    fetch = lambda: http("GET", f"{stack.url}/local/events?outTradeNo={out_trade_no}")[1]["events"]  # noqa: E731
    wait_until(fetch, lambda found: len(found) >= count)
    time.sleep(1.0)  # five polls of the pipeline: a duplicate would be here by now
    return fetch()


def test_three_deliveries_of_one_payment_make_one_OrderPaid_posted_to_the_webhook(stack, webhook):
    order_str, out_trade_no = pay(stack)
    assert app_pay(stack, order_str, "?lost_answers=2")["resultStatus"] == "9000"
    assert len(acknowledged(stack, out_trade_no)["deliveries"]) == 3
    (paid,) = events_of(stack, out_trade_no, 1)
    assert paid["detail-type"] == "OrderPaid" and paid["source"] == "alipay-app-pay"
    assert paid["detail"]["outTradeNo"] == out_trade_no and paid["detail"]["status"] == 1
    posted = wait_until(lambda: [e for e in webhook.received if e["detail"]["outTradeNo"] == out_trade_no], bool)
    assert posted == [paid]


def test_a_closed_order_and_a_refund(stack):
    order_str, closed = pay(stack)
    assert app_pay(stack, order_str, "?outcome=closed")["resultStatus"] == "6001"
    assert [e["detail-type"] for e in events_of(stack, closed, 1)] == ["OrderClosed"]

    order_str, paid = pay(stack)
    assert app_pay(stack, order_str)["resultStatus"] == "9000"
    events_of(stack, paid, 1)
    event = json.dumps({"outTradeNo": paid, "outRequestNo": "R1", "refundAmount": 100}).encode()
    status, reply = http("POST", f"{stack.url}/local/invoke/refund", event, "application/json")
    assert status == 200 and reply["code"] == 200, reply
    kinds = [(e["detail-type"], e["detail"].get("refundAmount")) for e in events_of(stack, paid, 2)]
    assert kinds == [("OrderPaid", None), ("OrderRefunded", 100)]


def test_putevents_failing_delays_the_event_but_never_loses_it(stack):
    arm = json.dumps({"events": {"fail_next": repository.EVENTS.attempts, "code": "ThrottlingException"}}).encode()
    status, armed = http("POST", f"{stack.url}/local/faults", arm, "application/json")
    assert status == 200 and armed["events"]["pending"] == repository.EVENTS.attempts
    order_str, out_trade_no = pay(stack)
    assert app_pay(stack, order_str)["resultStatus"] == "9000"
    (paid,) = events_of(stack, out_trade_no, 1)
    assert paid["detail-type"] == "OrderPaid"
    faults = http("GET", f"{stack.url}/local/faults")[1]["events"]
    assert (faults["pending"], faults["injected"]) == (0, repository.EVENTS.attempts)
    assert stack.log_lines("PutEvents failed")  # it did fail first, and was retried
