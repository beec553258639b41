"""The local HTTP front: API Gateway (HTTP API, payload 2.0) for serverless.yml's routes, plus the
Alipay emulator under ``/sandbox/``. Standard library only (``http.server``).

Each request to a route becomes the event API Gateway would send (``local.events``) and goes to
the real handler named in serverless.yml; its ``{statusCode, headers, body}`` becomes the reply.
"""
from __future__ import annotations

import base64
import importlib
import json
import logging
import re
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple
from urllib.parse import parse_qsl, unquote, urlsplit

import yaml

from local import bills, cashier, console, events, lambda_api, schema
from local.checkout import Shop
from local.faults import FaultSwitch
from local import openapi_v3
from local.sandbox import OUTCOMES, AnswerLost, Sandbox, scan

log = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024
SANDBOX = "/sandbox"
INVOKE = "/local/invoke/"  # POST /local/invoke/<function>: direct invocation, as `aws lambda invoke`
FAULTS = "/local/faults"  # POST: make the next N DynamoDB calls fail (local/faults.py); GET: the state
BILL_REPORTS = "/local/bills/"  # GET /local/bills/<YYYY-MM-DD>: bill_reconcile's report for the day
EVENTS = "/local/events"  # GET: the order events the stage's bus delivered (local/order_events.py)


@dataclass(frozen=True)
class Route:
    """One ``httpApi`` event of serverless.yml, bound to its function's handler."""

    function: str
    method: str
    path: str  # the template, e.g. /orders/{outTradeNo}
    handler: Callable[[Dict[str, Any], Any], Dict[str, Any]]
    pattern: re.Pattern

    def match(self, method: str, path: str) -> Optional[Dict[str, str]]:
        if method != self.method and self.method != "*":
            return None
        found = self.pattern.fullmatch(path)
        return {k: unquote(v) for k, v in found.groupdict().items()} if found else None


def path_pattern(template: str) -> re.Pattern:
    """``/orders/{outTradeNo}`` -> a regex with a named group per path parameter."""
    parts = re.split(r"(\{[^}]+\})", template)
    regex = ""
    for part in parts:
        if part.startswith("{") and part.endswith("}"):
            name = part[1:-1]
            regex += f"(?P<{name[:-1]}>.+)" if name.endswith("+") else f"(?P<{name}>[^/]+)"
        else:
            regex += re.escape(part)
    return re.compile(regex)


def load_handler(spec: str) -> Callable:
    """``functions/pay/handler.handler`` -> the callable, imported as the Lambda runtime would."""
    module_path, _, attr = spec.rpartition(".")
    return getattr(importlib.import_module(module_path.replace("/", ".")), attr)


def http_routes(spec: Optional[Mapping[str, Any]] = None) -> List[Route]:
    """Every ``httpApi`` event in serverless.yml, in file order."""
    spec = spec or yaml.safe_load(schema.SERVERLESS_YML.read_text(encoding="utf-8"))
    routes = []
    for name, function in (spec.get("functions") or {}).items():
        for event in function.get("events") or []:
            http = event.get("httpApi") if isinstance(event, dict) else None
            if not http:
                continue
            if isinstance(http, str):  # the short form "POST /pay"
                method, _, path = http.partition(" ")
            else:
                method, path = http.get("method", "*"), http["path"]
            routes.append(Route(name, method.upper(), path, load_handler(function["handler"]), path_pattern(path)))
    return routes


class LambdaContext:
    """The few attributes of the Lambda context object a handler may read."""

    def __init__(self, function_name: str, timeout_seconds: float = 10.0) -> None:
        self.function_name = function_name
        self.aws_request_id = str(uuid.uuid4())
        self.memory_limit_in_mb = 256
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@dataclass(frozen=True)
class Function:
    """A function of serverless.yml, for direct invocation (``aws lambda invoke``) and schedules."""

    name: str
    handler: Callable[[Any, Any], Any]
    timeout: float
    schedules: Tuple[str, ...]  # rate(...) expressions of its schedule events
    streams: Tuple[Mapping[str, Any], ...] = ()  # its ``stream`` events (DynamoDB streams), as written

    def invoke(self, event: Any) -> Any:
        return self.handler(event, LambdaContext(self.name, self.timeout))


def functions(spec: Optional[Mapping[str, Any]] = None) -> Dict[str, Function]:
    """Every function in serverless.yml by name, with its timeout and schedule rates."""
    spec = spec or yaml.safe_load(schema.SERVERLESS_YML.read_text(encoding="utf-8"))
    default_timeout = float((spec.get("provider") or {}).get("timeout", 6))
    found = {}
    for name, function in (spec.get("functions") or {}).items():
        schedules, streams = [], []
        for event in function.get("events") or []:
            schedule = event.get("schedule") if isinstance(event, dict) else None
            if schedule:
                schedules.append(schedule if isinstance(schedule, str) else schedule.get("rate", ""))
            if isinstance(event, dict) and isinstance(event.get("stream"), dict):
                streams.append(event["stream"])
        found[name] = Function(
            name, load_handler(function["handler"]), float(function.get("timeout", default_timeout)), tuple(schedules),
            tuple(streams),
        )
    return found


class LocalServer(ThreadingHTTPServer):
    """The HTTP server; holds the routes and the emulator the request handler uses."""

    daemon_threads = True
    request_queue_size = 256  # listen backlog: reconcile's fan-out opens 64 gateway calls at once (default 5)

    def __init__(self, address: Tuple[str, int], routes: List[Route], sandbox: Sandbox, faults: Optional[FaultSwitch] = None) -> None:
        super().__init__(address, RequestHandler)
        self.routes = routes
        self.sandbox = sandbox
        self.faults = faults
        self.order_events = None  # local.order_events.LocalEventBus, once the stack runs
        self._functions: Optional[Dict[str, "Function"]] = None
        self.shop = Shop(f"http://{address[0]}:{self.server_address[1]}", lambda: self.sandbox)  # GET /: local/checkout.py

    def functions(self) -> Dict[str, "Function"]:
        """serverless.yml's functions, read once (a fan-out invokes eight at a time)."""
        if self._functions is None:
            self._functions = functions()
        return self._functions


class RequestHandler(BaseHTTPRequestHandler):
    server: LocalServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        log.info("%s %s", self.address_string(), format % args)

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        try:
            body = self._body()
        except ValueError as exc:
            return self._send(413, "application/json", json.dumps({"message": str(exc)}).encode())
        if url.path == "/health":
            return self._send_json(200, {"status": "ok", "routes": [f"{r.method} {r.path}" for r in self.server.routes]})
        if url.path == SANDBOX or url.path.startswith(SANDBOX + "/"):
            return self._sandbox(url.path[len(SANDBOX):], url.query, body)
        if url.path == FAULTS and self.server.faults is not None and self.command in ("GET", "POST"):
            return self._faults(body)
        if url.path == EVENTS and self.command == "GET" and self.server.order_events is not None:
            wanted = dict(parse_qsl(url.query)).get("outTradeNo")
            return self._send_json(200, {"events": self.server.order_events.listed(wanted)})
        if url.path.startswith(BILL_REPORTS) and self.command == "GET":
            return self._bill_report(url.path[len(BILL_REPORTS):])
        if url.path.startswith(INVOKE) and self.command == "POST":
            return self._invoke_directly(url.path[len(INVOKE):], body)
        invocation = lambda_api.PATH.fullmatch(url.path)
        if invocation and self.command == "POST":  # Lambda's Invoke API, for boto3 (reconcile's fan-out)
            status, headers, data = lambda_api.invoke(self.server.functions(), invocation.group(1),
                                                      self.headers.get("X-Amz-Invocation-Type"), body)
            return self._send(status, "application/json", data, headers)
        if self.server.sandbox is not None:
            page = self.server.shop.handle(self.command, url.path, url.query, body or b"")
            if page is not None:
                status, content_type, data, headers = page
                return self._send(status, content_type, data, headers)
        for route in self.server.routes:
            params = route.match(self.command, url.path)
            if params is not None:
                return self._invoke(route, url.path, url.query, body, params)
        self._send_json(404, {"message": "Not Found"})

    def _body(self) -> Optional[bytes]:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise ValueError("Request Entity Too Large")
        return self.rfile.read(length) if length else None

    def _invoke(self, route: Route, path: str, query: str, body: Optional[bytes], params: Dict[str, str]) -> None:
        headers = {key: ", ".join(self.headers.get_all(key)) for key in self.headers.keys()}
        event = events.http_event(self.command, path, body, headers, params or None, query, route=route.path)
        try:
            reply = route.handler(event, LambdaContext(route.function))
        except Exception:  # noqa: BLE001 - what API Gateway does when the function crashes
            log.exception("%s crashed", route.function)
            return self._send_json(500, {"message": "Internal Server Error"})
        payload = reply.get("body") or ""
        data = base64.b64decode(payload) if reply.get("isBase64Encoded") else payload.encode("utf-8")
        self._send(int(reply.get("statusCode", 200)), None, data, reply.get("headers") or {})

    def _invoke_directly(self, name: str, body: Optional[bytes]) -> None:
        """``aws lambda invoke`` for the local stack: the JSON body is the event, the reply the result."""
        function = functions().get(name)
        if function is None:
            return self._send_json(404, {"message": f"no function {name[:64]!r} in serverless.yml"})
        try:
            event = json.loads(body or b"{}")
        except ValueError:
            return self._send_json(400, {"message": "the event must be JSON"})
        try:
            result = function.invoke(event)
        except Exception as exc:  # noqa: BLE001 - Lambda reports a function error, not a crash
            log.exception("%s failed", name)
            return self._send_json(200, {"errorType": type(exc).__name__, "errorMessage": str(exc)})
        self._send_json(200, result)

    def _bill_report(self, day: str) -> None:
        """``GET /local/bills/YYYY-MM-DD``: bill_reconcile's report for the day, from the (moto) bucket."""
        import os  # noqa: PLC0415

        from shared.aws.reports import S3Reports  # noqa: PLC0415

        report = S3Reports(os.environ["BILL_REPORT_BUCKET"]).get(day) if re.fullmatch(r"\d{4}-\d{2}-\d{2}", day) else None
        if report is None:
            return self._send_json(404, {"message": f"no report for {day[:10]!r}; make invoke FUNCTION=bill_reconcile EVENT='{{\"date\":\"YYYY-MM-DD\"}}'"})
        self._send_json(200, report)

    def _faults(self, body: Optional[bytes]) -> None:
        """``GET``: the switch's state; ``POST`` a JSON spec to arm it (local/faults.py)."""
        if self.command == "GET":
            return self._send_json(200, self.server.faults.state())
        try:
            state = self.server.faults.arm(json.loads(body or b"null"))
        except ValueError as exc:  # a JSON error is a ValueError too
            return self._send_json(400, {"message": str(exc)})
        log.warning("faults armed: %s", json.dumps(state))
        self._send_json(200, state)

    def _sandbox(self, path: str, query: str, body: Optional[bytes]) -> None:
        sandbox = self.server.sandbox
        args = dict(parse_qsl(query, keep_blank_values=True))
        if path == "/app-pay" and self.command == "POST":
            try:
                lost = int(args.get("lost_answers", "0"))
            except ValueError:
                lost = -1
            if not 0 <= lost <= len(sandbox.notifier.delays):
                return self._send_json(400, {"message": "lost_answers must be an integer from 0 to 7"})
            return self._send_json(200, sandbox.app_pay(body or b"", args.get("outcome", "success"), lost))
        if path == "/gateway.do" and self.command in ("GET", "POST"):
            try:
                return self._send(*sandbox.gateway(query.encode("ascii", "replace"), body or b""))
            except AnswerLost as exc:  # applied; the caller sees the connection drop, no answer
                log.warning("sandbox gateway: %s", exc)
                self.close_connection = True
                return None
        if path == "/gateway/lost-answers" and self.command in ("GET", "POST"):  # lose the next N answers
            if self.command == "POST":
                try:
                    sandbox.lose_answers((json.loads(body or b"{}") or {}).get("next"))
                except (ValueError, AttributeError) as exc:
                    return self._send_json(400, {"message": str(exc) or "expected {\"next\": N}"})
            return self._send_json(200, {"next": sandbox.answers_to_lose()})
        if path.startswith(openapi_v3.PREFIX):  # OpenAPI v3: JSON bodies, the authorization header
            headers = {key: ", ".join(self.headers.get_all(key)) for key in self.headers.keys()}
            status, kind, data, extra = openapi_v3.answer(sandbox, self.command, path, query, headers, body or b"")
            return self._send(status, kind, data, extra)
        if path == "/scan" and self.command == "POST":  # the buyer scans a precreate QR code
            if args.get("outcome", "success") not in OUTCOMES:
                return self._send_json(400, {"message": f"outcome must be one of {', '.join(OUTCOMES)}"})
            trade = scan(sandbox, args.get("out_trade_no", ""), args.get("outcome", "success"))
            return self._send_json(200 if trade else 404, trade or {"message": "no unpaid trade with that out_trade_no"})
        if path == "/scan" and self.command == "GET":  # the buyer's phone after scanning the code
            return self._send(*cashier.scan_page(sandbox, query))
        if path == "/scan/choice" and self.command == "POST":
            return self._send(*cashier.scan_act(sandbox, body or b""))
        if path == "/cashier" and self.command == "POST":  # the buyer's choice at the page/wap cashier
            return self._send(*cashier.act(sandbox, body or b""))
        if path == "/console/refund" and self.command == "POST":  # the merchant refunds in Alipay's console
            return self._send_json(*console.post_refund(sandbox, body))
        if path.startswith("/bills/"):  # the daily bill: download, plants (local/bills.py)
            return self._send(*bills.route(sandbox, self.command, path, args, body))
        if path.startswith("/trades/") and self.command == "GET":
            trade = sandbox.ledger.snapshot(unquote(path[len("/trades/"):]))
            return self._send_json(200 if trade else 404, trade or {"message": "no such trade"})
        self._send_json(404, {"message": "Not Found"})

    def _send_json(self, status: int, payload: Any) -> None:
        self._send(status, "application/json; charset=utf-8", json.dumps(payload, ensure_ascii=False).encode("utf-8"))

    def _send(self, status: int, content_type: Optional[str], data: bytes, headers: Optional[Mapping[str, str]] = None) -> None:
        self.send_response(status)
        headers = dict(headers or {})
        if content_type and not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = content_type
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
