"""Input rules shared by pay and add_order. Every failure is an ``InvalidInput`` whose message
is fit for the caller (HTTP 400 ``msg``); nothing is written before validation passes.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any, Mapping, Optional

from . import money

MAX_ID_LEN = 64
MAX_SUBJECT_LEN = 256
MAX_BODY_LEN = 128
OUT_TRADE_NO_RE = re.compile(r"^[A-Za-z0-9_]{1,64}$")
APP, PAGE, WAP, PRECREATE = "app", "page", "wap", "precreate"
CHANNELS = (APP, PAGE, WAP, PRECREATE)


class InvalidInput(ValueError):
    """The request is wrong; the message says what, in words the client can act on."""


def text(payload: Mapping[str, Any], name: str, max_len: int, *, required: bool = True) -> Optional[str]:
    """A string field: present (when required), non-blank, at most ``max_len`` characters,
    valid Unicode without control characters (they break Alipay's subject and our logs)."""
    value = payload.get(name)
    if value is None or value == "":
        if required:
            raise InvalidInput(f"{name} is required")
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be a string")
    if not value.strip():
        raise InvalidInput(f"{name} must not be blank")
    if len(value) > max_len:
        raise InvalidInput(f"{name} must be at most {max_len} characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(f"{name} is not valid Unicode") from None
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in value):
        raise InvalidInput(f"{name} must not contain control characters")
    return value


@dataclass(frozen=True)
class NewOrder:
    """A validated order request, before it has an orderNum."""

    product_id: str
    user_id: str
    order_name: str
    total_cents: int
    body: Optional[str] = None


def _common(payload: Any) -> dict:
    if not isinstance(payload, Mapping):
        raise InvalidInput("body must be a JSON object")
    return {
        "product_id": text(payload, "productId", MAX_ID_LEN),
        "user_id": text(payload, "userId", MAX_ID_LEN),
        "order_name": text(payload, "orderName", MAX_SUBJECT_LEN),
        "body": text(payload, "body", MAX_BODY_LEN, required=False),
    }


def _amount(convert, value: Any, name: str) -> int:
    if value is None or value == "":
        raise InvalidInput(f"{name} is required")
    try:
        return convert(value, field=name)
    except money.InvalidAmount as exc:
        raise InvalidInput(str(exc)) from None


def pay_request(payload: Any) -> NewOrder:
    """pay's JSON body: ``{productId, userId, orderName, total_amount (yuan), body?}``."""
    fields = _common(payload)
    cents = _amount(money.yuan_to_cents, payload.get("total_amount"), "total_amount")
    return NewOrder(total_cents=cents, **fields)


def add_order_request(payload: Any) -> tuple[NewOrder, Optional[str]]:
    """add_order's event: ``{productId, userId, orderName, totalAmount (cents), orderNum?}``."""
    fields = _common(payload)
    cents = _amount(money.check_cents, payload.get("totalAmount"), "totalAmount")
    order_num = payload.get("orderNum")
    if order_num is not None and (not isinstance(order_num, str) or not OUT_TRADE_NO_RE.match(order_num)):
        raise InvalidInput("orderNum must be 1-64 characters of letters, digits and underscores")
    return NewOrder(total_cents=cents, **fields), order_num


def pay_channel(payload: Any) -> str:
    """pay's optional ``channel``: app (default), page (PC web), wap (mobile web), precreate (QR)."""
    channel = payload.get("channel") if isinstance(payload, Mapping) else None
    if channel is None or channel == "":
        return APP
    if channel not in CHANNELS:
        raise InvalidInput(f"channel must be one of {', '.join(CHANNELS)}")
    return channel


MAX_REFUND_REASON_LEN = 256


@dataclass(frozen=True)
class RefundRequest:
    """A validated refund: ``cents`` None means everything not yet refunded."""

    out_trade_no: str
    out_request_no: str
    cents: Optional[int]
    reason: Optional[str] = None


OUT_REQUEST_NO_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # ours: also fits UUIDs as idempotency keys


def _identifier(payload: Mapping[str, Any], name: str, pattern: re.Pattern, what: str) -> str:
    value = payload.get(name)
    if value is None or value == "":
        raise InvalidInput(f"{name} is required")
    if not isinstance(value, str) or not pattern.match(value):
        raise InvalidInput(f"{name} must be 1-64 characters of {what}")
    return value


def refund_request(payload: Any) -> RefundRequest:
    """refund's event: ``{outTradeNo, outRequestNo, refundAmount? (cents), refundReason?}``."""
    if not isinstance(payload, Mapping):
        raise InvalidInput("event must be a JSON object")
    amount = payload.get("refundAmount")
    return RefundRequest(
        out_trade_no=_identifier(payload, "outTradeNo", OUT_TRADE_NO_RE, "letters, digits and underscores"),
        out_request_no=_identifier(payload, "outRequestNo", OUT_REQUEST_NO_RE, "letters, digits, '_' and '-'"),
        cents=None if amount is None else _amount(money.check_cents, amount, "refundAmount"),
        reason=text(payload, "refundReason", MAX_REFUND_REASON_LEN, required=False),
    )
