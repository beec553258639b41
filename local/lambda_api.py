"""Lambda's Invoke API on the local stack: ``POST /2015-03-31/functions/{name}/invocations``.

The scheduled reconcile fans out with boto3's ``lambda.invoke(InvocationType="Event")``; the local
stack points ``AWS_ENDPOINT_URL_LAMBDA`` here, so that same call (moto lets unknown endpoints
through) runs the worker's real handler on a thread and answers 202, as Lambda queues the event.
``RequestResponse`` runs it at once and answers its result, as Lambda does.
"""
from __future__ import annotations

import json
import logging
import re
import threading
from typing import Any, Dict, Mapping, Optional, Tuple
from urllib.parse import unquote

log = logging.getLogger(__name__)

PATH = re.compile(r"/2015-03-31/functions/([^/]+)/invocations")

Reply = Tuple[int, Dict[str, str], bytes]


def short_name(name: str) -> str:
    """``reconcile_worker`` of ``alipay-app-pay-local-reconcile_worker`` or of its ARN."""
    return unquote(name).rsplit(":function:", 1)[-1].split(":", 1)[0].rsplit("-", 1)[-1]


def invoke(functions: Mapping[str, Any], name: str, invocation_type: Optional[str], body: Optional[bytes]) -> Reply:
    function = functions.get(short_name(name))
    if function is None:
        return _error(404, "ResourceNotFoundException", f"Function not found: {name[:128]}")
    try:
        event = json.loads(body or b"{}")
    except ValueError:
        return _error(400, "InvalidRequestContentException", "Could not parse request body into json")
    if (invocation_type or "RequestResponse") == "Event":
        threading.Thread(target=_run_async, args=(function, event), name=f"invoke-{function.name}", daemon=True).start()
        return 202, {}, b""
    try:
        result = function.invoke(event)
    except Exception as exc:  # noqa: BLE001 - Lambda reports a function error in the reply
        log.exception("%s failed", function.name)
        payload = {"errorType": type(exc).__name__, "errorMessage": str(exc)}
        return 200, {"X-Amz-Function-Error": "Unhandled"}, json.dumps(payload).encode()
    return 200, {}, json.dumps(result).encode()


def _run_async(function: Any, event: Any) -> None:
    try:
        function.invoke(event)
    except Exception:  # noqa: BLE001 - Lambda logs it; with maximumRetryAttempts 0 nothing retries
        log.exception("asynchronous %s failed", function.name)


def _error(status: int, kind: str, message: str) -> Reply:
    return status, {"X-Amzn-ErrorType": kind}, json.dumps({"Type": "User", "message": message}).encode()
