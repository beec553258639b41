"""Input rules shared by pay and add_order. Every failure is an ``InvalidInput`` whose message
is fit for the caller (HTTP 400 ``msg``); nothing is written before validation passes.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Protocol

from . import money

MAX_ID_LEN = 64
MAX_SUBJECT_LEN = 256
MAX_BODY_LEN = 128
OUT_TRADE_NO_RE = re.compile(r"^[A-Za-z0-9_]{1,64}\Z")  # \Z: "$" would allow a final "\n"
APP, PAGE, WAP, PRECREATE = "app", "page", "wap", "precreate"
CHANNELS = (APP, PAGE, WAP, PRECREATE)


class RequestRefused(ValueError):
    """The request cannot be served as sent; ``status`` is the HTTP answer, the message its ``msg``."""

    status = 400


class InvalidInput(RequestRefused):
    """The request is wrong; the message says what, in words the client can act on."""


class PriceList(Protocol):
    """Where pay's prices come from when the client's are not trusted (catalog.py's ``Catalog``)."""

    def price(self, product_id: str, client_amount: Any) -> int:
        """The price in cents; ``InvalidInput`` for an unknown product or a differing client amount."""


class NotTheCaller(RequestRefused):
    """The body names another user than the one the JWT authorizer verified."""

    status = 403


# Rejected characters, by Unicode category: controls and line/paragraph separators (they break
# Alipay's subject and our logs), lone surrogates (not encodable), format characters (bidi
# overrides that disguise text, zero-width joiners), private-use and unassigned code points.
_REJECTED_CATEGORIES = {"Cc": "control characters", "Zl": "control characters", "Zp": "control characters",
                        "Cs": "lone surrogates", "Cf": "invisible format characters (bidi, zero-width)",
                        "Co": "private-use characters", "Cn": "unassigned code points"}
_MAX_COMBINING_RUN = 3  # Vietnamese stacks two; "zalgo" text stacks dozens
# NFC joins at most a base and _MAX_COMBINING_RUN marks (or a Hangul L+V+T) into one character, so
# text longer than this many times the limit cannot fit it and is refused before it is examined.
_NFC_SHRINK = _MAX_COMBINING_RUN + 1


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
    if len(value) > _NFC_SHRINK * max_len:  # bounded before the per-character walk
        raise InvalidInput(f"{name} must be at most {max_len} characters")
    _check_characters(name, value)
    value = unicodedata.normalize("NFC", value)  # "e" + U+0301 and "é" are one subject
    if not value.strip():
        raise InvalidInput(f"{name} must not be blank")
    if len(value) > max_len:
        raise InvalidInput(f"{name} must be at most {max_len} characters")
    return value


def _check_characters(name: str, value: str) -> None:
    """Refuse what Alipay's subject or our logs cannot carry; the message says which kind."""
    combining = 0
    for position, ch in enumerate(value):
        category = unicodedata.category(ch)
        if category in _REJECTED_CATEGORIES:
            raise InvalidInput(f"{name} must not contain {_REJECTED_CATEGORIES[category]}")
        if _is_emoji(ch, category):
            raise InvalidInput(f"{name} must not contain emoji (Alipay refuses them in titles)")
        if category in ("Mn", "Mc", "Me"):
            combining += 1
            if position == 0 or combining > _MAX_COMBINING_RUN:
                raise InvalidInput(f"{name} has misplaced combining marks")
        else:
            combining = 0


def _is_emoji(ch: str, category: str) -> bool:
    """Pictographs above the BMP, their skin-tone modifiers and the emoji variation selector;
    BMP symbols such as ★ stay allowed (shops use them in product names)."""
    code = ord(ch)
    return (code > 0xFFFF and category in ("So", "Sk")) or code in (0xFE0F, 0x20E3)


@dataclass(frozen=True)
class NewOrder:
    """A validated order request, before it has an orderNum."""

    product_id: str
    user_id: str
    order_name: str
    total_cents: int
    body: Optional[str] = None


def _common(payload: Any, caller: Optional[str] = None) -> dict:
    if not isinstance(payload, Mapping):
        raise InvalidInput("body must be a JSON object")
    return {
        "product_id": text(payload, "productId", MAX_ID_LEN),
        "user_id": _user_id(payload, caller),
        "order_name": text(payload, "orderName", MAX_SUBJECT_LEN),
        "body": text(payload, "body", MAX_BODY_LEN, required=False),
    }


def _user_id(payload: Mapping[str, Any], caller: Optional[str]) -> str:
    """The JWT's ``sub`` when the route has an authorizer; the body's ``userId`` only without one.
    A body that names someone else is refused rather than silently rewritten."""
    if caller is None:
        return text(payload, "userId", MAX_ID_LEN)
    claimed = text(payload, "userId", MAX_ID_LEN, required=False)
    if claimed is not None and claimed != caller:
        raise NotTheCaller("userId differs from the signed-in user")
    if len(caller) > MAX_ID_LEN:
        raise InvalidInput(f"the signed-in user's id is longer than {MAX_ID_LEN} characters")
    return caller


def _amount(convert, value: Any, name: str) -> int:
    if value is None or value == "":
        raise InvalidInput(f"{name} is required")
    try:
        return convert(value, field=name)
    except money.InvalidAmount as exc:
        raise InvalidInput(str(exc)) from None


def pay_request(payload: Any, *, caller: Optional[str] = None, catalog: Optional[PriceList] = None) -> NewOrder:
    """pay's JSON body: ``{productId, userId, orderName, total_amount (yuan), body?}``.

    ``caller`` (the JWT ``sub``) replaces ``userId``; with a ``catalog`` the price is the
    catalog's and ``total_amount`` becomes optional (checked against it when sent).
    """
    fields = _common(payload, caller)
    if catalog is not None:
        cents = catalog.price(fields["product_id"], payload.get("total_amount"))
    else:
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


OUT_REQUEST_NO_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}\Z")  # ours: also fits UUIDs as idempotency keys


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
