"""The gateway client over real HTTP to a tiny server on 127.0.0.1 (no network beyond loopback)."""
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import pytest

from local import alipay
from shared.gateway import MAX_RESPONSE_BYTES, AlipayGateway, GatewayError

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
