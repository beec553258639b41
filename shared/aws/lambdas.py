"""Lambda's Invoke API, asynchronous: how the scheduled reconcile fans its shards out to workers.

``InvocationType=Event`` queues the event and answers 202 at once; the worker runs on its own
container with its own timeout. Locally the same boto3 call reaches the local stack
(``AWS_ENDPOINT_URL_LAMBDA``), which runs the worker's handler on a thread (local/server.py).
"""
from __future__ import annotations

import json
from typing import Any, Mapping

from .repository import client


class InvokeFailed(RuntimeError):
    """Lambda did not accept the event (the message holds the AWS error code, never the payload)."""


def invoke_async(function_name: str, event: Mapping[str, Any]) -> None:
    """Queue ``event`` for ``function_name``; return once Lambda has accepted it (HTTP 202)."""
    try:
        reply = client("lambda").invoke(
            FunctionName=function_name, InvocationType="Event", Payload=json.dumps(event).encode("utf-8"),
        )
    except Exception as exc:  # noqa: BLE001 - botocore raises many classes; the code is what matters
        code = (getattr(exc, "response", None) or {}).get("Error", {}).get("Code") or type(exc).__name__
        raise InvokeFailed(f"Invoke {function_name} failed: {code}") from None
    if reply.get("StatusCode") != 202:
        raise InvokeFailed(f"Invoke {function_name} answered {reply.get('StatusCode')}, not 202")
