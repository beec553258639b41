"""Fault injection on the real botocore client: its ``before-send`` event answers instead of the
network. Retries, backoff and error parsing all run as in production; only the wire is faked.

A faulted request never reaches the emulator (moto's in-process stub also listens on
``before-send``, so the request is pointed at an address no emulator serves): as with a real
throttle or 5xx, DynamoDB did not apply it. "Applied, then the answer was lost" is simulated
explicitly where a test needs it.
"""
from __future__ import annotations

import json
import types
from typing import Callable, List, Optional

import botocore.endpoint
import pytest
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


class Faults:
    """For ``operation`` on ``client``: the next sends get ``plan``'s faults in turn (``None`` in
    the plan, or an exhausted plan, lets the call through). ``sent`` counts every attempt."""

    def __init__(self, client, operation: str, plan: List[Optional[Callable]], forever: Optional[Callable] = None) -> None:
        self.plan = list(plan)
        self.forever = forever
        self.sent = 0
        service = client.meta.service_model.service_id.hyphenize()
        client.meta.events.register_first(f"before-send.{service}.{operation}", self._send)

    def _send(self, request, **_):
        self.sent += 1
        fault = self.plan.pop(0) if self.plan else self.forever
        if fault is None:
            return None
        response = fault(request)  # may raise (a timeout), after doing its own side effects
        request.url = UNSERVED
        return response


class Sleeps:
    """Stands in for botocore's ``time.sleep`` between retries: records, never waits."""

    def __init__(self) -> None:
        self.delays: List[float] = []

    def sleep(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
def sleeps(monkeypatch) -> Sleeps:
    """botocore's backoff between retries, recorded instead of slept (import it into a test module)."""
    recorder = Sleeps()
    monkeypatch.setattr(botocore.endpoint, "time", types.SimpleNamespace(sleep=recorder.sleep))
    return recorder
