"""Percent-encoding (``application/x-www-form-urlencoded``), exactly as urllib does it, in C.

``urllib.parse.quote_plus`` walks every byte in Python and ``unquote_to_bytes`` every escape. An
orderStr and a notify each carry a 344-character base64 signature and a few hundred bytes of JSON
or text, so next to one RSA operation those loops were a large share of our time. Here regular
expressions find what needs escaping and ``binascii`` decodes escapes; the unit tests hold both
functions to urllib's results for arbitrary input.
"""
from __future__ import annotations

import binascii
import re

_PLAIN = re.compile(r"[A-Za-z0-9_.\-~ ]*")  # urllib's always-safe characters, and space
_BASE64 = re.compile(r"[A-Za-z0-9+/=]*")
_UNSAFE_RUN = re.compile(r"[^A-Za-z0-9_.\-~ ]+")


def quote_plus(text: str, encoding: str = "utf-8") -> str:
    """``urllib.parse.quote_plus(text, encoding=encoding)`` for an ASCII-compatible encoding."""
    if _PLAIN.fullmatch(text):
        return text.replace(" ", "+")
    if _BASE64.fullmatch(text):  # a signature: three characters to escape, no run to encode
        return text.replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")
    escape = _escape_utf8 if encoding == "utf-8" else lambda run: _percent(run[0], encoding)
    return _UNSAFE_RUN.sub(escape, text).replace(" ", "+")


def _percent(run: str, encoding: str) -> str:
    return "%" + run.encode(encoding).hex("%").upper()


_ESCAPED: dict = {}  # JSON's '":"' and '","' and a shop's usual words recur in every orderStr


def _escape_utf8(match: "re.Match[str]") -> str:
    run = match[0]
    escaped = _ESCAPED.get(run)
    if escaped is None:
        escaped = _percent(run, "utf-8")
        if len(_ESCAPED) < 1024 and len(run) <= 16:
            _ESCAPED[run] = escaped
    return escaped


def unquote_plus_bytes(data: bytes) -> bytes:
    """``urllib.parse.unquote_to_bytes(data.replace(b"+", b" "))``, in a fixed number of C passes.

    Quoted-printable is percent-encoding spelled with ``=``: ``=`` becomes ``=3D``, a ``%`` that
    starts no escape (urllib keeps it as it is) becomes ``=25``, line breaks (quoted-printable's
    soft breaks) become ``=0D``/``=0A``, every other ``%`` becomes ``=``, and ``binascii.a2b_qp``
    decodes in one pass. Each ``=`` then shortens the text by exactly two; a result of any other
    length would go to urllib (whose per-escape Python loop is the slow path hostile bodies aimed
    at: 10 ms for 64 KiB of lone escapes), and the unit tests hold the two equal.
    """
    data = data.replace(b"+", b" ")
    if b"%" not in data:
        return data
    qp = data.replace(b"=", b"=3D")
    if b"\n" in qp or b"\r" in qp:
        qp = qp.replace(b"\r", b"=0D").replace(b"\n", b"=0A")
    qp = _LONE_PERCENT.sub(b"=25", qp).replace(b"%", b"=")
    decoded = binascii.a2b_qp(qp)
    if len(qp) - len(decoded) == 2 * qp.count(b"="):
        return decoded
    from urllib.parse import unquote_to_bytes  # noqa: PLC0415 - never seen: a2b_qp changed its rules

    return unquote_to_bytes(data)


_LONE_PERCENT = re.compile(rb"%(?![0-9A-Fa-f]{2})")
