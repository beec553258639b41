"""API Gateway HTTP API (payload v2.0) in and out: bodies, the ``{code, data, msg}`` envelope."""
from __future__ import annotations

import base64
import binascii
import functools
import json
import logging
from decimal import Decimal
from typing import Any, Callable, Dict, Mapping, Optional

from . import logs
from .config import Settings, settings
from .environment import ConfigError
from .domain import money
from .domain.validation import InvalidInput, RequestRefused

log = logging.getLogger(__name__)

MAX_JSON_BODY = 16 * 1024
# The longest JSON number read, as long as an amount's text may be. A longer literal (16 KiB of
# digits costs Decimal and int() real time) is refused, as is a number Decimal cannot hold at all
# (``1e9999999999999999999``: an exponent beyond its limits).
MAX_NUMBER_TEXT = money.MAX_AMOUNT_TEXT


def raw_body(event: Mapping[str, Any], max_bytes: Optional[int] = None) -> bytes:
    """The request body as bytes, undoing API Gateway's base64 when it applied it.

    With ``max_bytes`` a longer body is refused before it is decoded or copied (a character is at
    least one byte; base64 carries three bytes in four characters).
    """
    body = event.get("body")
    if body is None:
        return b""
    encoded = bool(event.get("isBase64Encoded"))
    if max_bytes is not None and len(body) > (4 * ((max_bytes + 2) // 3) if encoded else max_bytes):
        raise BodyTooLarge(max_bytes)
    if encoded:
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidInput("body is not valid base64") from None
    else:
        raw = body.encode("utf-8", "surrogatepass")
    if max_bytes is not None and len(raw) > max_bytes:
        raise BodyTooLarge(max_bytes)
    return raw


def raw_query(event: Mapping[str, Any], max_bytes: int) -> bytes:
    """The query string as sent (``rawQueryString``), refused before it is copied when longer."""
    query = event.get("rawQueryString") or ""
    if len(query) > max_bytes or len(raw := query.encode("utf-8", "surrogatepass")) > max_bytes:
        raise BodyTooLarge(max_bytes, "query string")
    return raw


class BodyTooLarge(InvalidInput):
    """The body (or query) is longer than the endpoint reads: checked before it is decoded."""

    def __init__(self, max_bytes: int, what: str = "body") -> None:
        super().__init__(f"{what} must be at most {max_bytes} bytes")


def json_body(event: Mapping[str, Any]) -> Any:
    """The JSON body, numbers kept exact (``Decimal``, never float).

    A number this API cannot take (longer than ``MAX_NUMBER_TEXT``, or beyond Decimal's exponent
    limits) is a 400 that names its field, whichever field it is in: decided here, once, so no
    field's conversion can meet an ``InvalidOperation``.
    """
    raw = raw_body(event, MAX_JSON_BODY)
    if not raw.strip():
        raise InvalidInput("body is required")
    unreadable: list = []

    def number(text: str, convert: Callable[[str], Any]) -> Any:
        if len(text) <= MAX_NUMBER_TEXT:
            try:
                return convert(text)
            except ArithmeticError:  # decimal.InvalidOperation
                pass
        marker = _Unreadable(text)
        unreadable.append(marker)
        return marker

    try:
        document = json.loads(
            raw.decode("utf-8"), parse_float=lambda text: number(text, Decimal),
            parse_int=lambda text: number(text, int), parse_constant=_no_constant,
        )
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise InvalidInput("body must be valid UTF-8 JSON") from None
    if unreadable:
        where = _path_of(document, unreadable[0])
        raise InvalidInput(f"{where} is a number this API cannot read: {unreadable[0].text[:24]!r}"
                           f" (at most {MAX_NUMBER_TEXT} characters, within Decimal's range)")
    return document


class _Unreadable:
    """Stands in for a JSON number that ``number`` could not convert, until its field is named."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def _path_of(document: Any, target: Any) -> str:
    """Where ``target`` sits in ``document``: ``total_amount``, ``items[2].price``; one linear walk."""
    stack = [(document, "")]
    while stack:
        node, path = stack.pop()
        if node is target:
            return path[:80] or "the body"
        if isinstance(node, dict):
            stack.extend((value, f"{path}.{key}" if path else str(key)) for key, value in node.items())
        elif isinstance(node, list):
            stack.extend((value, f"{path}[{index}]") for index, value in enumerate(node))
    return "the body"  # pragma: no cover - the marker is always in the document


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def header(event: Mapping[str, Any], name: str) -> Optional[str]:
    """A request header by case-insensitive name (HTTP API v2 lower-cases them; tests may not)."""
    wanted = name.lower()
    for key, value in (event.get("headers") or {}).items():
        if key.lower() == wanted:
            return value
    return None


def jwt_sub(event: Mapping[str, Any]) -> Optional[str]:
    """The ``sub`` claim of the JWT the HTTP API authorizer verified; None without an authorizer.

    Only API Gateway writes ``requestContext.authorizer``; a client cannot forge it, unlike a
    ``userId`` in the body.
    """
    try:
        sub = event["requestContext"]["authorizer"]["jwt"]["claims"]["sub"]
    except (KeyError, TypeError):
        return None
    return sub if isinstance(sub, str) and sub else None


def envelope(code: int, data: Any = None, msg: str = "ok") -> Dict[str, Any]:
    """Seed 004's response shape: ``{code, data, msg}``."""
    return {"code": code, "data": data, "msg": msg}


def json_reply(code: int, data: Any = None, msg: str = "ok", headers: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
    """An HTTP API reply whose status equals the envelope's code."""
    return {
        "statusCode": code,
        "headers": {"Content-Type": "application/json; charset=utf-8", **(headers or {})},
        "body": json.dumps(envelope(code, data, msg), ensure_ascii=False),
    }


def text_reply(text: str, status: int = 200) -> Dict[str, Any]:
    """A plain-text reply (Alipay reads the notify answer as the bare word)."""
    return {"statusCode": status, "headers": {"Content-Type": "text/plain; charset=utf-8"}, "body": text}


def html_reply(page: str, status: int = 200) -> Dict[str, Any]:
    """An HTML page for a browser (the return_url); never cached, as the order state moves."""
    return {
        "statusCode": status,
        "headers": {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"},
        "body": page,
    }


# --- the guard every handler shares ------------------------------------------------------------

def endpoint(*needs: str, error: Callable[[int, str], Dict[str, Any]] = lambda code, msg: json_reply(code, None, msg)):
    """Wrap ``fn(event, settings)`` as a Lambda handler.

    Configuration named in ``needs`` is validated first, so nothing is written on bad config
    (500, the variable logged by name). A ``RequestRefused`` (``InvalidInput``: 400) is answered
    with its status and message; anything else is our failure: logged with its traceback,
    answered 500 without details. Every log line of the invocation carries its request ids.
    """

    def wrap(fn: Callable[[Mapping[str, Any], Settings], Dict[str, Any]]):
        @functools.wraps(fn)
        def handler(event: Mapping[str, Any], context: Any = None) -> Dict[str, Any]:
            logs.clear(
                function_request_id=getattr(context, "aws_request_id", None),
                api_request_id=_api_request_id(event),
            )
            try:
                cfg = settings().require(*needs)
            except ConfigError as exc:
                log.error("%s", exc)
                return error(500, "server configuration error")
            try:
                return fn(event, cfg)
            except RequestRefused as exc:
                log.info("refused %s: %s", exc.status, exc)
                return error(exc.status, str(exc))
            except Exception:  # noqa: BLE001 - the last line of defence answers, never crashes
                log.exception("%s failed", fn.__module__)
                return error(500, "internal error, please retry")

        return handler

    return wrap


def _api_request_id(event: Any) -> Optional[str]:
    try:
        return event["requestContext"]["requestId"]
    except (KeyError, TypeError):
        return None
