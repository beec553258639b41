"""Alipay's asynchronous notify: parse the form, verify RSA2, check it is ours — or reject.

One step, ``verify_notify``, and one error, ``NotifyRejected``: a notify either comes out as a
``Notify`` we can act on, or is refused with a reason for the log (and ``fail`` for Alipay, so
it retries). Seed 000: sign first, then app_id, out_trade_no and total_amount; we add seller_id.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from cryptography.hazmat.primitives.asymmetric import rsa

from ..domain import money
from . import signing, urlcode

MAX_BODY_BYTES = 64 * 1024  # a real notify is about 1-2 KB
CHARSETS = {"utf-8": "utf-8", "utf8": "utf-8", "gbk": "gbk", "gb2312": "gbk", "gb18030": "gb18030"}
REQUIRED = ("app_id", "out_trade_no", "trade_status", "total_amount")
PAID_STATUSES = ("TRADE_SUCCESS", "TRADE_FINISHED")
MAX_FIELDS = 200
# The longest value Alipay documents for each field this backend reads (trade_status_sync; sign:
# a 4096-bit RSA signature is 684 base64 characters). A longer one is not Alipay's: refused before
# anything parses, compares or stores it. Amounts are bounded by money.MAX_AMOUNT_TEXT, the
# charset by its short list of names.
FIELD_LIMITS = {
    "app_id": 32, "out_trade_no": 64, "trade_no": 64, "trade_status": 32, "seller_id": 30, "notify_id": 128,
    "gmt_payment": 19, "sign_type": 10, "sign": 1024, "alipay_cert_sn": 64,
}


class NotifyRejected(Exception):
    """The notify is not one we accept. ``reason`` is safe to log (no key material)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Notify:
    """A verified notify, reduced to what the order state machine needs."""

    out_trade_no: str
    trade_status: str
    trade_no: Optional[str]
    total_cents: int
    app_id: str
    seller_id: Optional[str]
    notify_id: Optional[str]
    gmt_payment: Optional[str]
    params: Mapping[str, str]


def charset_encoding(declared: Optional[str]) -> str:
    """The codec for a notify's ``charset`` field (utf-8 when absent); others are refused."""
    name = (declared or "utf-8").strip().lower()
    if name not in CHARSETS:
        raise NotifyRejected(f"unsupported charset {name[:20]!r}")
    return CHARSETS[name]


def parse_form(raw: bytes) -> Dict[str, str]:
    """Decode ``application/x-www-form-urlencoded`` in the charset the notify names.

    Percent-decoding happens on bytes; the bytes are then decoded with the ``charset`` field
    (utf-8 by default, gbk for shops configured so). Duplicate keys are refused: which value
    would be the signed one is exactly what a forger would like to choose.

    The usual notify (utf-8, plain keys, well formed) is decoded whole, in a handful of C calls.
    Anything else — another charset, an escape in a key or an escaped ``&`` that could move a
    boundary, a malformed or hostile body — is left to the field-by-field decoder, which gives
    the same result for the usual notify (tests/unit/test_notify_parsing.py) and decides the rest.
    """
    if len(raw) > MAX_BODY_BYTES:
        raise NotifyRejected(f"body larger than {MAX_BODY_BYTES} bytes")
    if raw.count(b"&") >= MAX_FIELDS:  # counted in C before anything is split
        raise NotifyRejected(f"more than {MAX_FIELDS} fields")
    if _ESCAPED_KEY.search(b"&" + raw):
        return _parse_by_field(raw)
    try:
        fields = urlcode.unquote_plus_bytes(raw).decode("utf-8").split("&")
        params = dict([field.split("=", 1) for field in fields])
    except (UnicodeDecodeError, ValueError):  # not utf-8, or a field without "="
        return _parse_by_field(raw)
    if (
        len(fields) != raw.count(b"&") + 1  # an escaped "&" split a value
        or len(params) != len(fields)  # a duplicate
        or len(fields) > MAX_FIELDS
        or "" in params
        or params.get("charset", "utf-8") not in _UTF8
    ):
        return _parse_by_field(raw)
    return params


# Searched in b"&" + body: a pattern that starts with a literal is scanned for at C speed.
_ESCAPED_KEY = re.compile(rb"&[^&=%]*+%")
_UTF8 = frozenset(name for name, codec in CHARSETS.items() if codec == "utf-8")


def _parse_by_field(raw: bytes) -> Dict[str, str]:
    """``parse_form`` one field at a time: for bodies the whole-body decoding cannot split safely."""
    pairs = _form_pairs(raw)
    declared = next((v.decode("ascii", "replace") for k, v in pairs if k == b"charset"), None)
    encoding = charset_encoding(declared)
    params: Dict[str, str] = {}
    for key_bytes, value_bytes in pairs:
        try:
            key = key_bytes.decode(encoding)
            value = value_bytes.decode(encoding)
        except UnicodeDecodeError:
            raise NotifyRejected(f"field is not valid {encoding}") from None
        if key in params:
            raise NotifyRejected(f"duplicate field {key[:40]!r}")
        params[key] = value
    return params


def _form_pairs(raw: bytes) -> List[Tuple[bytes, bytes]]:
    """Split and percent-decode on bytes (``urllib.parse.parse_qsl`` decodes as ASCII first)."""
    if not raw:
        return []
    fields = raw.split(b"&")
    if len(fields) > MAX_FIELDS:
        raise NotifyRejected(f"more than {MAX_FIELDS} fields")
    pairs = []
    for field in fields:
        key, sep, value = field.partition(b"=")
        if not sep or not key:
            raise NotifyRejected("body is not a form")
        pairs.append((urlcode.unquote_plus_bytes(key), urlcode.unquote_plus_bytes(value)))
    return pairs


def verify_signature(
    params: Mapping[str, str], public_key: rsa.RSAPublicKey, alipay_cert_sn: Optional[str] = None
) -> None:
    """RSA2 over the notify check content (``sign`` and ``sign_type`` left out, empty values kept).

    Certificate mode (``alipay_cert_sn`` configured): a notify naming another Alipay certificate
    was signed with a key we do not hold yet; it is refused with a reason that says to install the
    new certificate, and Alipay's retries (about 25 h) deliver it again once that is done.
    """
    named = params.get("alipay_cert_sn")
    if alipay_cert_sn is not None and named and named != alipay_cert_sn:
        raise NotifyRejected(f"alipay_cert_sn {named[:32]!r} is not the configured Alipay certificate; install it")
    if params.get("sign_type") != "RSA2":
        raise NotifyRejected("sign_type is not RSA2")
    sign = params.get("sign")
    if not sign:
        raise NotifyRejected("missing sign")
    encoding = charset_encoding(params.get("charset"))
    content = signing.check_content(params)  # empty fields are signed too
    if not signing.rsa2_verify(public_key, content, sign, encoding):
        raise NotifyRejected("bad signature")


def verified_params(
    raw: bytes,
    *,
    public_key: rsa.RSAPublicKey,
    app_id: str,
    required: Sequence[str],
    alipay_cert_sn: Optional[str] = None,
) -> Dict[str, str]:
    """Parse a form Alipay signed like a notify (the notify itself, the sync return), verify it,
    and check that the ``required`` fields are there and the app is ours."""
    params = parse_form(raw)
    for name, limit in FIELD_LIMITS.items():
        if len(params.get(name, "")) > limit:
            raise NotifyRejected(f"{name} longer than {limit} characters")
    verify_signature(params, public_key, alipay_cert_sn)
    missing = [name for name in required if not params.get(name)]
    if missing:
        raise NotifyRejected(f"missing {', '.join(missing)}")
    if params["app_id"] != app_id:
        raise NotifyRejected("app_id is not ours")
    return params


def amount_cents(text: str) -> int:
    """An amount Alipay sent, in cents; malformed means rejected."""
    try:
        return money.yuan_to_cents(text)
    except money.InvalidAmount as exc:
        raise NotifyRejected(str(exc)) from None


def verify_notify(
    raw: bytes,
    *,
    public_key: rsa.RSAPublicKey,
    app_id: str,
    seller_id: Optional[str] = None,
    alipay_cert_sn: Optional[str] = None,
) -> Notify:
    """Parse, verify and check a notify body; raise ``NotifyRejected`` on anything amiss."""
    params = verified_params(raw, public_key=public_key, app_id=app_id, required=REQUIRED, alipay_cert_sn=alipay_cert_sn)
    if seller_id is not None and params.get("seller_id") != seller_id:
        raise NotifyRejected("seller_id is not ours")
    if params["trade_status"] in PAID_STATUSES and not params.get("trade_no"):
        raise NotifyRejected("paid notify without trade_no")
    cents = amount_cents(params["total_amount"])
    return Notify(
        out_trade_no=params["out_trade_no"],
        trade_status=params["trade_status"],
        trade_no=params.get("trade_no") or None,
        total_cents=cents,
        app_id=params["app_id"],
        seller_id=params.get("seller_id") or None,
        notify_id=params.get("notify_id") or None,
        gmt_payment=params.get("gmt_payment") or None,
        params=params,
    )
