"""API Gateway HTTP API (payload format 2.0) events, built as API Gateway builds them."""
from __future__ import annotations

import base64
import time
import uuid
from typing import Any, Dict, Mapping, Optional
from urllib.parse import parse_qsl

TEXT_TYPES = ("application/json", "text/", "application/xml")


def http_event(
    method: str,
    path: str,
    body: Optional[bytes] = None,
    headers: Optional[Mapping[str, str]] = None,
    path_parameters: Optional[Mapping[str, str]] = None,
    query: str = "",
    route: Optional[str] = None,
) -> Dict[str, Any]:
    """An HTTP API v2.0 event. Like API Gateway, the body is base64-encoded unless its
    content type is textual (form posts from Alipay therefore arrive base64-encoded).
    ``route`` is the matched route's path template (``/orders/{outTradeNo}``); default ``path``."""
    headers = {k.lower(): v for k, v in (headers or {}).items()}
    content_type = headers.get("content-type", "")
    route_key = f"{method} {route or path}"
    event: Dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": query,
        "headers": headers,
        "requestContext": {
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": headers.get("user-agent", "")},
            "requestId": str(uuid.uuid4()),
            "routeKey": route_key,
            "stage": "$default",
            "timeEpoch": int(time.time() * 1000),
        },
        "isBase64Encoded": False,
    }
    if query:
        params: Dict[str, str] = {}
        for key, value in parse_qsl(query, keep_blank_values=True):
            params[key] = f"{params[key]},{value}" if key in params else value  # API Gateway joins repeats
        event["queryStringParameters"] = params
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
