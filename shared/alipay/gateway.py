"""A small client for Alipay's open-API gateway (``gateway.do``): query, close, refund.

Standard library only (``http.client`` + ``ssl``), so the Lambda package stays small. A call is:

1. the common parameters plus ``biz_content``, signed RSA2 (shared/alipay/orderstr.py, shared/alipay/signing.py);
   like the official SDK's ``DefaultAlipayClient.execute``, the common parameters and ``sign``
   travel in the URL query and ``biz_content`` in the form body;
2. one POST that ends by one deadline (connect and every read included) and a bounded response size;
3. the answer trusted only once its ``sign`` verifies over the exact raw text of the
   ``<method>_response`` value as it appears in the body (never a re-serialisation).

Two errors: ``GatewayError`` when there is no trustworthy answer (network, timeout, HTTP status,
malformed, unsigned or badly signed body) — the caller may retry; ``AlipayError`` (a subclass)
when Alipay answered, signed, with a code other than 10000.
"""
from __future__ import annotations

import io
import json
import re
import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Mapping, Optional, Tuple
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import rsa

from ..domain import clock, money
from . import orderstr, signing

if TYPE_CHECKING:  # cert (cryptography.x509) loads only in certificate mode
    from .cert import CertSN

DEFAULT_URL = "https://openapi.alipay.com/gateway.do"
DEFAULT_TIMEOUT = 5.0  # seconds for the whole call; Alipay answers in well under one
MAX_RESPONSE_BYTES = 256 * 1024
SUCCESS_CODE = "10000"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})

TRADE_QUERY = "alipay.trade.query"
TRADE_CLOSE = "alipay.trade.close"
TRADE_REFUND = "alipay.trade.refund"
TRADE_PRECREATE = "alipay.trade.precreate"
TRADE_FASTPAY_REFUND_QUERY = "alipay.trade.fastpay.refund.query"
REFUND_SUCCESS = "REFUND_SUCCESS"
PRECREATE_PRODUCT_CODE = "FACE_TO_FACE_PAYMENT"

# Sub-codes the trade APIs answer with (seed 002); the ones callers act on are named here.
TRADE_NOT_EXIST = "ACQ.TRADE_NOT_EXIST"
TRADE_STATUS_ERROR = "ACQ.TRADE_STATUS_ERROR"
SYSTEM_ERROR = "ACQ.SYSTEM_ERROR"


class GatewayError(Exception):
    """No trustworthy answer from Alipay. Nothing may be concluded; retrying is safe."""


class AlipayError(GatewayError):
    """Alipay's signed answer with a code other than 10000 (e.g. 40004 / ACQ.TRADE_NOT_EXIST)."""

    def __init__(self, code: str, sub_code: Optional[str] = None, sub_msg: Optional[str] = None, msg: Optional[str] = None) -> None:
        super().__init__(f"alipay error {code} {sub_code or ''}: {sub_msg or msg or ''}".strip())
        self.code = code
        self.sub_code = sub_code
        self.sub_msg = sub_msg
        self.msg = msg


# --- 1. the request ----------------------------------------------------------------------------

def build_request(
    method: str,
    biz: Mapping[str, Any],
    *,
    app_id: str,
    private_key: rsa.RSAPrivateKey,
    timestamp: str,
    notify_url: Optional[str] = None,
    cert_sn: Optional[CertSN] = None,
) -> Tuple[str, bytes]:
    """The signed request as ``(url query, form body)``, split as the official SDK splits it.

    ``notify_url`` for APIs that create a trade (precreate); ``cert_sn`` in certificate mode.
    """
    params = orderstr.common_params(method, app_id, timestamp, notify_url, cert_sn=cert_sn)
    params["biz_content"] = orderstr.biz_content_json(biz)
    signed = orderstr.signed_params(private_key, params)
    body = {"biz_content": signed.pop("biz_content")}
    return orderstr.encode(signed), orderstr.encode(body).encode("ascii")


# --- 2. the POST -------------------------------------------------------------------------------

Transport = Callable[[str, str, bytes, float], bytes]


def check_url(url: str) -> str:
    """HTTPS anywhere; plain HTTP only to this machine (the local emulator)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS:
        return url
    raise ValueError("gateway URL must be https:// (http:// only on the loopback interface)")


def http_post(url: str, query: str, body: bytes, timeout: float) -> bytes:
    """POST ``body`` to ``url?query``; the answer, or ``GatewayError``, within ``timeout`` seconds of the start.

    One deadline for the whole call: connecting, the TLS handshake, sending, the wait for the
    response headers and every read of the body each wait only for what is left of it. (Per-step
    timeouts alone let a slow connect, a slow first byte and a dripping body take several times
    ``timeout``.) Name resolution is the one step no socket timeout bounds.
    """
    import http.client  # noqa: PLC0415 - with ssl ~20 ms of cold start; only gateway calls need them
    import socket  # noqa: PLC0415
    import ssl  # noqa: PLC0415

    parts = urlsplit(url)
    deadline = time.monotonic() + timeout
    context = ssl.create_default_context() if parts.scheme == "https" else None
    if context is not None:
        conn: "http.client.HTTPConnection" = http.client.HTTPSConnection(parts.hostname, parts.port, context=context)
    else:
        conn = http.client.HTTPConnection(parts.hostname, parts.port)

    def send(data: bytes) -> None:  # the request line and headers, then the body
        conn.sock.settimeout(_left(deadline))
        http.client.HTTPConnection.send(conn, data)

    def response(sock, *args, **kwargs) -> "http.client.HTTPResponse":
        reply = http.client.HTTPResponse(sock, *args, **kwargs)
        reply.fp = io.BufferedReader(_Within(reply.fp.detach(), sock, deadline))  # status line, headers, body
        return reply

    conn.send, conn.response_class = send, response  # http.client's own hooks, per connection
    path = (parts.path or "/") + "?" + query
    headers = {"Content-Type": f"application/x-www-form-urlencoded;charset={orderstr.CHARSET}"}
    try:
        conn.sock = socket.create_connection((conn.host, conn.port), _left(deadline))
        if context is not None:
            conn.sock.settimeout(_left(deadline))  # the handshake is one bounded wait
            conn.sock = context.wrap_socket(conn.sock, server_hostname=conn.host)
        conn.request("POST", path, body=body, headers=headers)
        reply = conn.getresponse()
        chunks: List[bytes] = []
        size = 0
        while True:
            if time.monotonic() > deadline:
                raise GatewayError(f"no complete answer within {timeout}s")
            chunk = reply.read1(64 * 1024)
            if not chunk:
                break
            size += len(chunk)
            if size > MAX_RESPONSE_BYTES:
                raise GatewayError(f"answer larger than {MAX_RESPONSE_BYTES} bytes")
            chunks.append(chunk)
        if reply.status != 200:
            raise GatewayError(f"HTTP {reply.status} from the gateway")
        return b"".join(chunks)
    except (OSError, http.client.HTTPException) as exc:  # socket.timeout is an OSError
        raise GatewayError(f"gateway unreachable: {type(exc).__name__}") from None
    finally:
        conn.close()


def _left(deadline: float) -> float:
    """Seconds until ``deadline``; none left is a timeout, like the socket's own (an OSError)."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("the gateway call's deadline has passed")
    return left


class _Within(io.RawIOBase):
    """The response's socket stream; each read waits only for what is left until ``deadline``."""

    def __init__(self, raw: io.RawIOBase, sock, deadline: float) -> None:
        super().__init__()
        self._raw, self._sock, self._deadline = raw, sock, deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> Optional[int]:
        self._sock.settimeout(_left(self._deadline))
        return self._raw.readinto(buffer)

    def close(self) -> None:
        self._raw.close()
        super().close()


# --- 3. the answer -----------------------------------------------------------------------------

_WS = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


def _members(text: str) -> Dict[str, Tuple[int, int]]:
    """The top-level members of a JSON object as ``key -> (start, end)`` of each raw value.

    ``raw_decode`` walks each value exactly as ``json`` parses it, so the spans are the bytes
    Alipay signed, whatever spacing or escapes it used. Duplicate keys are refused.
    """
    spans: Dict[str, Tuple[int, int]] = {}
    pos = _WS.match(text, 0).end()
    if text[pos:pos + 1] != "{":
        raise ValueError("not a JSON object")
    pos = _WS.match(text, pos + 1).end()
    if text[pos:pos + 1] == "}":
        return spans
    while True:
        key, pos = _DECODER.raw_decode(text, pos)
        if not isinstance(key, str):
            raise ValueError("object key is not a string")
        pos = _WS.match(text, pos).end()
        if text[pos:pos + 1] != ":":
            raise ValueError("expected ':'")
        start = _WS.match(text, pos + 1).end()
        _, end = _DECODER.raw_decode(text, start)
        if key in spans:
            raise ValueError(f"duplicate member {key[:40]!r}")
        spans[key] = (start, end)
        pos = _WS.match(text, end).end()
        if text[pos:pos + 1] == ",":
            pos = _WS.match(text, pos + 1).end()
            continue
        if text[pos:pos + 1] == "}" and not text[pos + 1:].strip(" \t\n\r"):
            return spans
        raise ValueError("expected ',' or the end of the object")


def response_key(method: str) -> str:
    """``alipay.trade.query`` answers in ``alipay_trade_query_response``."""
    return method.replace(".", "_") + "_response"


def parse_response(
    body: bytes, method: str, public_key: rsa.RSAPublicKey, alipay_cert_sn: Optional[str] = None
) -> Dict[str, Any]:
    """Verify and decode a gateway answer; return the response object when its code is 10000.

    Certificate mode (``alipay_cert_sn`` configured): an answer naming another Alipay certificate
    is untrusted (``GatewayError``, so callers retry) until that certificate is installed.
    """
    try:
        text = body.decode(orderstr.CHARSET)
        spans = _members(text)
        named = json.loads(text[slice(*spans["alipay_cert_sn"])]) if "alipay_cert_sn" in spans else None
        key = response_key(method) if response_key(method) in spans else "error_response"
        raw = text[slice(*spans[key])] if key in spans else None
        payload = json.loads(raw) if raw is not None else None
        sign = json.loads(text[slice(*spans["sign"])]) if "sign" in spans else None
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # RecursionError: nesting beyond the parser's depth
        raise GatewayError(f"malformed answer: {str(exc)[:200]}") from None
    if alipay_cert_sn is not None and named and named != alipay_cert_sn:
        raise GatewayError(f"answer signed with alipay_cert_sn {str(named)[:32]!r}, not the configured certificate; install it")
    if raw is None:
        raise GatewayError(f"answer has no {response_key(method)}")
    if not isinstance(payload, dict):
        raise GatewayError(f"{key} is not an object")
    if not isinstance(sign, str) or not sign:
        # Alipay leaves some errors unsigned (e.g. an unknown app_id); unsigned is not its word.
        raise GatewayError(f"unsigned answer (code {str(payload.get('code'))[:8]} {str(payload.get('sub_code'))[:64]})")
    if not signing.rsa2_verify(public_key, raw, sign, orderstr.CHARSET):
        raise GatewayError("answer signature does not verify")
    code = str(payload.get("code", ""))
    if code != SUCCESS_CODE or key == "error_response":
        raise AlipayError(code, payload.get("sub_code"), payload.get("sub_msg"), payload.get("msg"))
    return payload


# --- the client --------------------------------------------------------------------------------

@dataclass(frozen=True)
class TradeQuery:
    """``alipay.trade.query``: the trade as Alipay sees it."""

    out_trade_no: str
    trade_no: Optional[str]
    trade_status: str
    total_cents: Optional[int]
    send_pay_date: Optional[str]
    raw: Mapping[str, Any]


@dataclass(frozen=True)
class TradeClose:
    """``alipay.trade.close``: the trade is closed at Alipay."""

    out_trade_no: str
    trade_no: Optional[str]


@dataclass(frozen=True)
class TradeRefund:
    """``alipay.trade.refund``. ``fund_change`` is False when this out_request_no was already
    refunded before (Alipay answers a repeat with the same result, moving no money)."""

    out_trade_no: str
    trade_no: Optional[str]
    fund_change: bool
    refund_fee_cents: Optional[int]  # the trade's cumulative refunded amount at Alipay
    gmt_refund_pay: Optional[str]
    raw: Mapping[str, Any]


@dataclass(frozen=True)
class RefundQuery:
    """``alipay.trade.fastpay.refund.query``: what Alipay knows of one refund request.

    Alipay's doc: code 10000 only means the query ran. An answer that carries the refund's data
    (``refund_amount``) means the refund succeeded — ``refund_status`` REFUND_SUCCESS where Alipay
    returns it, absent in the older answers; one without it means "not refunded", and the
    refund may be retried with the same out_request_no (never another)."""

    out_trade_no: str
    out_request_no: str
    refund_status: Optional[str]
    refund_cents: Optional[int]
    gmt_refund_pay: Optional[str]
    raw: Mapping[str, Any]

    @property
    def refunded(self) -> bool:
        """Alipay has the refund: REFUND_SUCCESS, or (no refund_status) the refund's data returned."""
        if self.refund_status is not None:
            return self.refund_status == REFUND_SUCCESS
        return self.refund_cents is not None

    @property
    def not_found(self) -> bool:
        """Alipay returned no refund for this out_request_no: it never arrived, or did not succeed."""
        return self.refund_status is None and self.refund_cents is None


@dataclass(frozen=True)
class TradePrecreate:
    """``alipay.trade.precreate``: the trade exists at Alipay; ``qr_code`` is what to show."""

    out_trade_no: str
    qr_code: str


def _cents(value: Any, field: str) -> Optional[int]:
    """An amount in an answer (``"12.30"``) as cents; absent is None, malformed is untrusted."""
    if value in (None, ""):
        return None
    try:
        return money.yuan_to_cents(value, field=field)
    except money.InvalidAmount as exc:
        raise GatewayError(f"answer has a malformed {field}: {exc}") from None


class AlipayGateway:
    """One method per Alipay API, named after it. Holds parsed keys; safe to reuse per container."""

    def __init__(
        self,
        *,
        app_id: str,
        private_key: rsa.RSAPrivateKey,
        alipay_public_key: rsa.RSAPublicKey,
        url: str = DEFAULT_URL,
        timeout: float = DEFAULT_TIMEOUT,
        transport: Optional[Transport] = None,
        cert_sn: Optional[CertSN] = None,
        alipay_cert_sn: Optional[str] = None,
    ) -> None:
        self.app_id = app_id
        self.cert_sn = cert_sn  # certificate mode: sent on every request
        self.alipay_cert_sn = alipay_cert_sn  # certificate mode: the one answers may name
        self.url = check_url(url)
        self.timeout = timeout
        self._private_key = private_key
        self._public_key = alipay_public_key
        self._transport = transport or http_post

    @classmethod
    def from_settings(cls, cfg) -> "AlipayGateway":
        return cls(
            app_id=cfg.app_id, private_key=cfg.app_private_key, alipay_public_key=cfg.alipay_public_key, url=cfg.gateway_url,
            cert_sn=cfg.cert_sn, alipay_cert_sn=cfg.alipay_cert_sn,
        )

    def call(
        self, method: str, biz: Mapping[str, Any], at: Optional[datetime] = None, notify_url: Optional[str] = None
    ) -> Dict[str, Any]:
        """Sign, POST, verify; the response object on code 10000, else ``AlipayError``."""
        query, body = build_request(
            method, biz, app_id=self.app_id, private_key=self._private_key, timestamp=clock.alipay_timestamp(at),
            notify_url=notify_url, cert_sn=self.cert_sn,
        )
        answer = self._transport(self.url, query, body, self.timeout)
        payload = parse_response(answer, method, self._public_key, self.alipay_cert_sn)
        if "out_trade_no" in biz and payload.get("out_trade_no") not in (None, biz["out_trade_no"]):
            raise GatewayError("answer is about another out_trade_no")
        return payload

    def trade_query(self, out_trade_no: str, at: Optional[datetime] = None) -> TradeQuery:
        payload = self.call(TRADE_QUERY, {"out_trade_no": out_trade_no}, at)
        status = payload.get("trade_status")
        if not isinstance(status, str) or not status:
            raise GatewayError("query answer without trade_status")
        return TradeQuery(
            out_trade_no=out_trade_no,
            trade_no=payload.get("trade_no") or None,
            trade_status=status,
            total_cents=_cents(payload.get("total_amount"), "total_amount"),
            send_pay_date=payload.get("send_pay_date") or None,
            raw=payload,
        )

    def trade_close(self, out_trade_no: str, at: Optional[datetime] = None) -> TradeClose:
        payload = self.call(TRADE_CLOSE, {"out_trade_no": out_trade_no}, at)
        return TradeClose(out_trade_no=out_trade_no, trade_no=payload.get("trade_no") or None)

    def trade_refund(
        self,
        out_trade_no: str,
        refund_cents: int,
        out_request_no: str,
        reason: Optional[str] = None,
        at: Optional[datetime] = None,
    ) -> TradeRefund:
        biz = {
            "out_trade_no": out_trade_no,
            "refund_amount": money.cents_to_yuan(money.check_cents(refund_cents, field="refund_amount")),
            "out_request_no": out_request_no,
        }
        if reason:
            biz["refund_reason"] = reason
        payload = self.call(TRADE_REFUND, biz, at)
        return TradeRefund(
            out_trade_no=out_trade_no,
            trade_no=payload.get("trade_no") or None,
            fund_change=payload.get("fund_change") == "Y",
            refund_fee_cents=_cents(payload.get("refund_fee"), "refund_fee"),
            gmt_refund_pay=payload.get("gmt_refund_pay") or None,
            raw=payload,
        )

    def trade_fastpay_refund_query(
        self, out_trade_no: str, out_request_no: str, at: Optional[datetime] = None
    ) -> RefundQuery:
        """Ask whether the refund ``out_request_no`` of the trade happened (统一收单交易退款查询).
        ``query_options`` asks for ``gmt_refund_pay``, which Alipay otherwise leaves out."""
        biz = {"out_trade_no": out_trade_no, "out_request_no": out_request_no, "query_options": ["gmt_refund_pay"]}
        payload = self.call(TRADE_FASTPAY_REFUND_QUERY, biz, at)
        if payload.get("out_request_no") not in (None, "", out_request_no):
            raise GatewayError("answer is about another out_request_no")
        status = payload.get("refund_status")
        if status is not None and not isinstance(status, str):
            raise GatewayError("answer has a malformed refund_status")
        return RefundQuery(
            out_trade_no=out_trade_no,
            out_request_no=out_request_no,
            refund_status=status or None,
            refund_cents=_cents(payload.get("refund_amount"), "refund_amount"),
            gmt_refund_pay=payload.get("gmt_refund_pay") or None,
            raw=payload,
        )

    def trade_precreate(
        self, order: orderstr.PayOrder, notify_url: str, at: Optional[datetime] = None
    ) -> TradePrecreate:
        """Create the trade at Alipay and get the QR code the buyer scans (当面付 precreate).

        Alipay notifies ``notify_url`` when the buyer pays, exactly as for the other channels.
        """
        payload = self.call(TRADE_PRECREATE, order.biz_content(PRECREATE_PRODUCT_CODE), at, notify_url)
        qr_code = payload.get("qr_code")
        if not isinstance(qr_code, str) or not qr_code:
            raise GatewayError("precreate answer without qr_code")
        return TradePrecreate(out_trade_no=order.out_trade_no, qr_code=qr_code)
