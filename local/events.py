"""API Gateway HTTP API (payload format 2.0) events, built as API Gateway builds them."""
from __future__ import annotations

import base64
import time
import uuid
from typing import Any, Dict, Mapping, Optional

TEXT_TYPES = ("application/json", "text/", "application/xml")


def http_event(
    method: str,
    path: str,
    body: Optional[bytes] = None,
    headers: Optional[Mapping[str, str]] = None,
    path_parameters: Optional[Mapping[str, str]] = None,
    query: str = "",
) -> Dict[str, Any]:
    """An HTTP API v2.0 event. Like API Gateway, the body is base64-encoded unless its
    content type is textual (form posts from Alipay therefore arrive base64-encoded)."""
    headers = {k.lower(): v for k, v in (headers or {}).items()}
    content_type = headers.get("content-type", "")
    event: Dict[str, Any] = {
        "version": "2.0",
        "routeKey": f"{method} {path}",
        "rawPath": path,
        "rawQueryString": query,
        "headers": headers,
        "requestContext": {
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": headers.get("user-agent", "")},
            "requestId": str(uuid.uuid4()),
            "routeKey": f"{method} {path}",
            "stage": "$default",
            "timeEpoch": int(time.time() * 1000),
        },
        "isBase64Encoded": False,
    }
    if path_parameters:
        event["pathParameters"] = dict(path_parameters)
    if body is not None:
        try:
            text = body.decode("utf-8") if content_type.startswith(TEXT_TYPES) else None
        except UnicodeDecodeError:
            text = None  # not valid text after all: API Gateway falls back to base64
        if text is not None:
            event["body"] = text
        else:
            event["body"] = base64.b64encode(body).decode("ascii")
            event["isBase64Encoded"] = True
    return event
