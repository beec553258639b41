"""Fault injection on the real botocore client: its ``before-send`` event answers instead of the
network. Retries, backoff and error parsing all run as in production; only the wire is faked.

A faulted request never reaches the emulator (moto's in-process stub also listens on
``before-send``, so the request is pointed at an address no emulator serves): as with a real
throttle or 5xx, DynamoDB did not apply it. "Applied, then the answer was lost" is simulated
explicitly where a test needs it.

The tests arm ``Faults`` directly; the local stack arms them over HTTP (``FaultSwitch``,
``POST /local/faults``) to show our own failure answered ``fail`` and Alipay's retry succeeding.
"""
from __future__ import annotations

import json
import threading
from typing import Any, Callable, Dict, List, Mapping, Optional

from botocore.awsrequest import AWSResponse
from botocore.exceptions import ConnectTimeoutError, ReadTimeoutError


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_):
        yield self._body


def _error(status: int, code: str) -> Callable:
    def respond(request) -> AWSResponse:
        body = json.dumps({"__type": f"com.amazonaws.injected#{code}", "message": f"injected {code}"})
        headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": "INJECTED"}
        return AWSResponse(request.url, status, headers, _Raw(body.encode()))

    return respond


UNSERVED = "https://fault-injected.invalid/"


def _raise(exc_type) -> Callable:
    def respond(request):
        url = request.url
        request.url = UNSERVED
        raise exc_type(endpoint_url=url)

    return respond


THROTTLED = _error(400, "ProvisionedThroughputExceededException")
THROTTLING = _error(400, "ThrottlingException")
INTERNAL_ERROR = _error(500, "InternalServerError")
UNAVAILABLE = _error(503, "ServiceUnavailable")
READ_TIMEOUT = _raise(ReadTimeoutError)
CONNECT_TIMEOUT = _raise(ConnectTimeoutError)

BY_CODE: Dict[str, Callable] = {
    "ProvisionedThroughputExceededException": THROTTLED,
    "ThrottlingException": THROTTLING,
    "InternalServerError": INTERNAL_ERROR,
    "ServiceUnavailable": UNAVAILABLE,
    "ReadTimeout": READ_TIMEOUT,
    "ConnectTimeout": CONNECT_TIMEOUT,
}


class Faults:
    """For ``operation`` on ``client`` (every operation when None): the next sends get ``plan``'s
    faults in turn (``None`` in the plan, or an exhausted plan, lets the call through). ``sent``
    counts every attempt, ``injected`` the faulted ones. Safe across threads (a threaded server)."""

    def __init__(self, client, operation: Optional[str], plan: List[Optional[Callable]], forever: Optional[Callable] = None) -> None:
        self.plan = list(plan)
        self.forever = forever
        self.sent = 0
        self.injected = 0
        self._lock = threading.Lock()
        service = client.meta.service_model.service_id.hyphenize()
        client.meta.events.register_first(f"before-send.{service}" + (f".{operation}" if operation else ""), self._send)

    def arm(self, plan: List[Optional[Callable]]) -> None:
        """Replace what is left of the plan."""
        with self._lock:
            self.plan = list(plan)

    def _send(self, request, **_):
        with self._lock:
            self.sent += 1
            fault = self.plan.pop(0) if self.plan else self.forever
            self.injected += fault is not None
        if fault is None:
            return None
        response = fault(request)  # may raise (a timeout), after doing its own side effects
        request.url = UNSERVED
        return response


class FaultSwitch:
    """The local stack's switch: ``{"dynamodb": {"fail_next": N, "code": "...", "after": M}}`` makes
    N calls to that service's client fail with ``code`` (default: a throttle), after letting the
    next M (default 0) through — e.g. a refund call's own two writes, then its notify's."""

    MAX_FAILURES = 100

    def __init__(self, clients: Mapping[str, Any]) -> None:
        self._faults = {service: Faults(client, None, []) for service, client in clients.items()}
        self._codes: Dict[str, Optional[str]] = {service: None for service in clients}

    def arm(self, spec: Any) -> Dict[str, Dict[str, Any]]:
        """Validate the whole ``spec`` first (``ValueError`` names what is wrong), then arm it."""
        if not isinstance(spec, dict) or not spec:
            raise ValueError(f"expected an object keyed by service: {', '.join(self._faults)}")
        plans = {}
        for service, rule in spec.items():
            if service not in self._faults:
                raise ValueError(f"unknown service {str(service)[:40]!r}; known: {', '.join(self._faults)}")
            count = rule.get("fail_next") if isinstance(rule, dict) else None
            if type(count) is not int or not 0 <= count <= self.MAX_FAILURES:
                raise ValueError(f"{service}.fail_next must be an integer from 0 to {self.MAX_FAILURES}")
            code = rule.get("code", "ProvisionedThroughputExceededException")
            if not isinstance(code, str) or code not in BY_CODE:
                raise ValueError(f"{service}.code must be one of {', '.join(BY_CODE)}")
            after = rule.get("after", 0)  # let this many calls through first
            if type(after) is not int or not 0 <= after <= self.MAX_FAILURES:
                raise ValueError(f"{service}.after must be an integer from 0 to {self.MAX_FAILURES}")
            plans[service] = (code, [None] * after * bool(count) + [BY_CODE[code]] * count)
        for service, (code, plan) in plans.items():
            self._faults[service].arm(plan)
            self._codes[service] = code if plan else None
        return self.state()

    def state(self) -> Dict[str, Dict[str, Any]]:
        """Per service: failures still to come, their code, and how many were injected so far."""
        return {
            service: {"pending": sum(f is not None for f in faults.plan), "code": self._codes[service], "injected": faults.injected}
            for service, faults in self._faults.items()
        }
