"""The gateway client over real HTTP to a tiny server on 127.0.0.1 (no network beyond loopback)."""
import socket
import threading
import types
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from local import alipay
from shared.alipay import gateway as gateway_module
from shared.alipay.gateway import MAX_RESPONSE_BYTES, AlipayGateway, GatewayError, http_post

APP_ID = "2021000000000001"


class FakeGateway(BaseHTTPRequestHandler):
    """Answers with ``server.answer`` (status, bytes); ``server.hold`` makes it stall first."""

    def do_POST(self):  # noqa: N802 - http.server's naming
        length = int(self.headers.get("Content-Length", 0))
        self.server.requests.append((self.path, self.headers.get("Content-Type"), self.rfile.read(length)))
        status, body = self.server.answer
        if self.server.hold.is_set():
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[:5])
            self.wfile.flush()
            self.server.release.wait(5)  # until the test ends; the client must give up first
            return
        self.send_response(status)
        self.send_header("Content-Type", "text/html;charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), FakeGateway)
    httpd.requests, httpd.hold, httpd.release = [], threading.Event(), threading.Event()
    httpd.handle_error = lambda request, address: None  # a client that gave up is expected here
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield httpd
    httpd.release.set()
    httpd.shutdown()
    httpd.server_close()


def client(server, app_keys, alipay_keys, timeout=2.0):
    url = f"http://127.0.0.1:{server.server_address[1]}/sandbox/gateway.do"
    return AlipayGateway(app_id=APP_ID, private_key=app_keys.private_key, alipay_public_key=alipay_keys.public_key,
                         url=url, timeout=timeout)


def test_query_over_http(server, app_keys, alipay_keys):
    answer = {"code": "10000", "msg": "Success", "out_trade_no": "ORDER_1", "trade_no": "1", "trade_status": "WAIT_BUYER_PAY",
              "total_amount": "0.01"}
    server.answer = (200, alipay.response_body("alipay.trade.query", answer, alipay_keys.private_key))
    trade = client(server, app_keys, alipay_keys).trade_query("ORDER_1")
    assert (trade.trade_status, trade.total_cents) == ("WAIT_BUYER_PAY", 1)
    (path, content_type, body), = server.requests
    assert urlsplit(path).path == "/sandbox/gateway.do"
    assert dict(parse_qsl(urlsplit(path).query))["method"] == "alipay.trade.query"
    assert content_type == "application/x-www-form-urlencoded;charset=utf-8"
    assert dict(parse_qsl(body.decode())) == {"biz_content": '{"out_trade_no":"ORDER_1"}'}


def test_http_error_status_is_a_gateway_error(server, app_keys, alipay_keys):
    server.answer = (502, b"<html>bad gateway</html>")
    with pytest.raises(GatewayError, match="HTTP 502"):
        client(server, app_keys, alipay_keys).trade_query("ORDER_1")


def test_oversized_answer_is_refused(server, app_keys, alipay_keys):
    server.answer = (200, b"{" + b" " * MAX_RESPONSE_BYTES + b"}")
    with pytest.raises(GatewayError, match="larger"):
        client(server, app_keys, alipay_keys).trade_query("ORDER_1")


def test_a_stalled_gateway_times_out(server, app_keys, alipay_keys):
    server.answer = (200, b'{"alipay_trade_query_response":{}}')
    server.hold.set()
    with pytest.raises(GatewayError, match="unreachable"):
        client(server, app_keys, alipay_keys, timeout=0.2).trade_query("ORDER_1")


def test_nothing_listening_is_a_gateway_error(app_keys, alipay_keys):
    probe = ThreadingHTTPServer(("127.0.0.1", 0), FakeGateway)
    port = probe.server_address[1]
    probe.server_close()
    gateway = AlipayGateway(app_id=APP_ID, private_key=app_keys.private_key, alipay_public_key=alipay_keys.public_key,
                            url=f"http://127.0.0.1:{port}/gateway.do", timeout=0.5)
    with pytest.raises(GatewayError, match="unreachable"):
        gateway.trade_query("ORDER_1")


# --- one deadline for the whole call, whatever the peer does (fake clock, no waiting) -----------

T = 5.0  # the call's timeout, in the fake clock's seconds


class Dripping(socket.socket):
    """A real connected socket whose peer is as slow as its timeout allows (``peer.wait``) before
    each send and each read, and drips the answer one byte per read."""

    def recv_into(self, buffer, nbytes=0, flags=0):
        self.peer.wait(self.gettimeout())
        return super().recv_into(memoryview(buffer)[:1], 1, flags)

    def sendall(self, data, flags=0):
        self.peer.wait(self.gettimeout())
        return super().sendall(data, flags)


class SlowPeer:
    """Before each blocking step the peer takes the plan's next delay, in fake seconds; a delay at
    or past the socket's timeout costs exactly that timeout and ends as a timeout, as a real one does."""

    def __init__(self, plan):
        self.plan, self.now = list(plan), 1000.0

    def wait(self, timeout):
        delay = self.plan.pop(0) if self.plan else 0.0
        if timeout is not None and delay >= timeout:
            self.now += timeout
            raise TimeoutError("timed out")
        self.now += delay


def slow_post(server, mp, plan):
    """``http_post`` to ``server`` through a ``SlowPeer``: (the answer or the error, fake seconds spent)."""
    peer = SlowPeer(plan)
    real = socket.create_connection

    def create_connection(address, timeout=None, *args, **kwargs):
        peer.wait(timeout)  # connecting (and, for HTTPS, more) is a step too
        sock = real(address, timeout, *args, **kwargs)
        dripping = Dripping(sock.family, sock.type, sock.proto, fileno=sock.detach())
        dripping.settimeout(timeout)
        dripping.peer = peer
        return dripping

    mp.setattr(socket, "create_connection", create_connection)
    mp.setattr(gateway_module, "time", types.SimpleNamespace(monotonic=lambda: peer.now))
    start = peer.now
    try:
        outcome = http_post(f"http://127.0.0.1:{server.server_address[1]}/gateway.do", "a=1", b"biz_content=x", T)
    except GatewayError as exc:
        outcome = exc
    return outcome, peer.now - start


ANSWER = b'{"alipay_trade_query_response":{"code":"10000"},"sign":"' + b"s" * 64 + b'"}'


@pytest.mark.parametrize("plan", [
    [0.99 * T, 0, 0.99 * T] + [0.9 * T] * 1000,  # slow connect, slow first byte, dripping headers and body
    [0, 0] + [0.2 * T] * 1000,  # every byte well within the per-read timeout
    [0, 0] + [0] * 60 + [0.99 * T] * 1000,  # headers fast, then the body drips
], ids=["connect-first-byte-drip", "steady-drip", "body-drip"])
def test_a_slow_or_dripping_gateway_costs_at_most_the_timeout(server, plan):
    server.answer = (200, ANSWER)
    with pytest.MonkeyPatch.context() as mp:
        outcome, spent = slow_post(server, mp, plan)
    assert isinstance(outcome, GatewayError)
    assert spent <= T + 1e-9, f"{spent / T:.1f} x the timeout"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=st.lists(st.sampled_from([0.0, 0.01 * T, 0.3 * T, 0.99 * T, 1.5 * T]), max_size=400))
def test_any_peer_ends_the_call_by_its_deadline_and_a_prompt_one_gets_the_whole_answer(server, plan):
    server.answer = (200, ANSWER)
    with pytest.MonkeyPatch.context() as mp:
        outcome, spent = slow_post(server, mp, plan)
    assert spent <= T + 1e-9
    if spent < T:  # not cut off: the answer is complete
        assert outcome == ANSWER
    else:
        assert isinstance(outcome, GatewayError)
