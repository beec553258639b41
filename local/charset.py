"""The charset a request to the emulator declares, which Alipay answers and notifies in.

Alipay reads a request's percent-escapes in its ``charset`` parameter (utf-8, gbk, gb2312,
gb18030), signs its answer over the text encoded in that charset and sends it so encoded, and
notifies the trade in it (the notify's own ``charset`` field). The parameter itself is ASCII, so
it is found before anything else is decoded.
"""
from __future__ import annotations

from typing import Optional
from urllib.parse import unquote_to_bytes

from shared.alipay.notify import CHARSETS  # the names Alipay knows and the codec each means

DEFAULT = "utf-8"


def codec(name: Optional[str]) -> Optional[str]:
    """The Python codec for a declared charset name (None when Alipay does not know it)."""
    return CHARSETS.get((name or DEFAULT).strip().lower())


def declared(*forms: bytes) -> Optional[str]:
    """The ``charset`` parameter of the first of ``forms`` (query, body) that has one, as sent."""
    for form in forms:
        for field in form.split(b"&"):
            key, _, value = field.partition(b"=")
            if key == b"charset":
                return unquote_to_bytes(value.replace(b"+", b" ")).decode("ascii", "replace")
    return None


def content_type(kind: str, name: Optional[str]) -> str:
    """``application/json; charset=GBK``: the charset named as the request named it."""
    return f"{kind}; charset={name or DEFAULT}"
