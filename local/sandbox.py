"""The Alipay emulator served under ``/sandbox/``: what Alipay's SDK and gateway do, on a laptop.

- ``app_pay``: the orderStr the app hands to Alipay's mobile SDK. Verified like Alipay verifies
  it (the app's RSA2 signature, then ``biz_content``), answered with the SDK's
  ``{resultStatus, memo, result}``; a paid or closed trade is then notified to its notify_url.
- ``gateway``: ``/sandbox/gateway.do``, dispatched on ``method`` through ``GATEWAY_METHODS``.
  Responses are signed over the exact JSON text of ``<method>_response`` as Alipay signs them.

Alipay's side of the signing is the project's own ``shared.signing`` with the emulator's
"Alipay" key: the emulator never carries a second copy of the sign rules.
"""
from __future__ import annotations

import json
import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable, Dict, Mapping, Optional, Tuple, Union
from urllib.parse import parse_qsl

from cryptography.hazmat.primitives.asymmetric import rsa

from shared.domain import clock, money, validation
from shared.alipay import aes, orderstr, signing

from local import alipay, charset
from local.ledger import TRADE_CLOSED, TRADE_SUCCESS, WAIT_BUYER_PAY, Ledger, Trade
from local.notifier import Notifier

OUTCOMES = ("success", "closed", "drop")
AMOUNT_RE = re.compile(r"\d{1,9}(\.\d{1,2})?")
TIMEOUT_RE = re.compile(r"^(\d{1,5})([mhd])$|^1c$")
MAX_TIMEOUT = timedelta(days=15)


class AnswerLost(Exception):
    """The gateway applied the call but its answer never reaches the caller (a broken connection)."""


class GatewayError(Exception):
    """An error Alipay answers with ``code`` (40001/40002/40004/20000), ``sub_code``, ``sub_msg``."""

    def __init__(self, code: str, msg: str, sub_code: str, sub_msg: str) -> None:
        super().__init__(f"{sub_code}: {sub_msg}")
        self.code, self.msg, self.sub_code, self.sub_msg = code, msg, sub_code, sub_msg

    def fields(self) -> Dict[str, str]:
        return {"code": self.code, "msg": self.msg, "sub_code": self.sub_code, "sub_msg": self.sub_msg}


def invalid(sub_code: str, sub_msg: str) -> GatewayError:
    return GatewayError("40002", "Invalid Arguments", sub_code, sub_msg)


def business(sub_code: str, sub_msg: str) -> GatewayError:
    return GatewayError("40004", "Business Failed", sub_code, sub_msg)


@dataclass(frozen=True)
class GatewayRequest:
    """A verified request: its public parameters and its parsed ``biz_content``."""

    params: Mapping[str, str]
    biz: Mapping[str, Any]
    encrypted: bool = False  # biz_content came AES-encrypted: the answer goes back encrypted

    @property
    def method(self) -> str:
        return self.params["method"]


@dataclass(frozen=True)
class RawReply:
    """A gateway method's answer that is not a signed JSON response (page/wap pay forms)."""

    status: int
    content_type: str
    body: bytes


MethodHandler = Callable[["Sandbox", GatewayRequest], Union[Dict[str, Any], RawReply]]
GATEWAY_METHODS: Dict[str, MethodHandler] = {}


def gateway_method(name: str) -> Callable[[MethodHandler], MethodHandler]:
    """Register a handler for ``/sandbox/gateway.do?method=<name>``. It returns the response's
    business fields (``code``/``msg`` are added) or raises ``GatewayError``."""

    def register(fn: MethodHandler) -> MethodHandler:
        GATEWAY_METHODS[name] = fn
        return fn

    return register


@dataclass(frozen=True)
class CertMode:
    """An app in public-key-certificate mode, as Alipay holds it (shared/alipay/cert.py computes the SNs)."""

    app_cert_sn: str
    alipay_root_cert_sn: str
    alipay_cert_sn: str


class Sandbox:
    """One emulated Alipay: the merchant's app id and keys, a ledger, and the notify sender."""

    def __init__(
        self,
        *,
        app_id: str,
        seller_id: str,
        app_public_key: rsa.RSAPublicKey,
        alipay_private_key: rsa.RSAPrivateKey,
        notifier: Optional[Notifier] = None,
        ledger: Optional[Ledger] = None,
        certs: Optional[CertMode] = None,
        gateway_latency: float = 0.0,
        buyer_confirms_after: float = 3.0,
        aes_key: Optional[bytes] = None,
    ) -> None:
        self.app_id = app_id
        self.gateway_latency = gateway_latency  # seconds each gateway answer waits (SANDBOX_GATEWAY_LATENCY_MS)
        self.seller_id = seller_id
        self.app_public_key = app_public_key
        self.alipay_private_key = alipay_private_key
        self.certs = certs  # certificate mode: the SNs requests must carry and answers name
        self.ledger = ledger or (notifier.ledger if notifier else Ledger())
        self.notifier = notifier or Notifier(self.ledger)
        self.base_url = "http://127.0.0.1/sandbox"  # where its download links point (the local stack sets it)
        self.extensions: Dict[str, Any] = {}  # state of the gateway modules under local/ (e.g. local/bills.py)
        self.buyer_confirms_after = buyer_confirms_after  # barcode codes ending 0001 (local/sandbox_trades.py)
        self.aes_key = aes_key  # content encryption on: requests must be encrypted, answers are
        self.refund_status_field = True  # False: refund queries answer as older Alipay, without refund_status
        self._lost_answers = 0  # the next N gateway answers are lost after the call was applied
        self._lost_lock = threading.Lock()

    def lose_answers(self, count: int) -> int:
        """Lose the next ``count`` gateway answers (each call still takes effect); returns it."""
        if type(count) is not int or not 0 <= count <= 100:
            raise ValueError("next must be an integer from 0 to 100")
        with self._lost_lock:
            self._lost_answers = count
        return count

    def answers_to_lose(self) -> int:
        with self._lost_lock:
            return self._lost_answers

    def _take_lost_answer(self) -> bool:
        with self._lost_lock:
            if self._lost_answers <= 0:
                return False
            self._lost_answers -= 1
            return True

    # --- the request envelope Alipay checks before any business rule ---------------------------

    def verify_request(self, params: Mapping[str, str], method: Optional[str] = None) -> GatewayRequest:
        """Check the public parameters and the app's RSA2 signature, then parse biz_content."""
        for name in ("app_id", "method", "charset", "sign_type", "sign", "timestamp", "version"):
            if not params.get(name):
                raise GatewayError("40001", "Missing Required Arguments", f"isv.missing-{name.replace('_', '-')}", f"缺少{name}参数")
        if method is not None and params["method"] != method:
            raise invalid("isv.invalid-method", f"不存在的方法名: {params['method'][:64]}")
        if params["app_id"] != self.app_id:
            raise invalid("isv.invalid-app-id", "无效的AppID参数")
        codec = charset.codec(params["charset"])
        if codec is None:
            raise invalid("isv.invalid-charset", "字符集错误")
        if params["sign_type"] != "RSA2":
            raise invalid("isv.invalid-signature-type", "无效的签名类型")
        if params["version"] != "1.0":
            raise invalid("isv.invalid-version", "版本号错误")
        try:
            clock.parse_alipay_time(params["timestamp"])
        except ValueError:
            raise invalid("isv.invalid-timestamp", "非法的时间戳参数") from None
        self.check_cert_sns(params)
        content = signing.sign_content(params, signing.REQUEST_EXCLUDED)
        if not signing.rsa2_verify(self.app_public_key, content, params["sign"], codec):
            raise invalid("isv.invalid-signature", "验签出错")
        text = self.decrypt_biz(params, codec)
        try:
            biz = json.loads(text or "{}")
        except ValueError:
            raise invalid("isv.invalid-biz-content", "biz_content 不是合法的 JSON") from None
        if not isinstance(biz, dict):
            raise invalid("isv.invalid-biz-content", "biz_content 不是 JSON 对象")
        return GatewayRequest(params, biz, bool(params.get("encrypt_type")))

    def decrypt_biz(self, params: Mapping[str, str], charset: str) -> str:
        """``biz_content`` in clear: decrypted when the app encrypts (required once it turned it on),
        after the sign was checked (Alipay signs over the ciphertext)."""
        encrypt_type = params.get("encrypt_type")
        if not encrypt_type:
            if self.aes_key is not None and params.get("biz_content"):
                raise invalid("isv.invalid-encrypt", "应用已开启接口内容加密，biz_content 须加密")
            return params.get("biz_content", "")
        if encrypt_type != aes.ENCRYPT_TYPE:
            raise invalid("isv.invalid-encrypt-type", "无效的加密类型")
        if self.aes_key is None:
            raise invalid("isv.invalid-encrypt", "应用未开启接口内容加密")
        try:
            return aes.decrypt(params.get("biz_content", ""), self.aes_key, charset)
        except aes.AesError:
            raise invalid("isv.decryption-error", "解密出错") from None

    def check_cert_sns(self, params: Mapping[str, str]) -> None:
        """Certificate mode: both SNs present and equal to the app's; public-key mode: neither."""
        sent = {name: params.get(name) for name in ("app_cert_sn", "alipay_root_cert_sn")}
        if self.certs is None:
            if any(sent.values()):
                raise invalid("isv.invalid-app-cert-sn", "应用未开启公钥证书模式")
            return
        for name, expected in (("app_cert_sn", self.certs.app_cert_sn), ("alipay_root_cert_sn", self.certs.alipay_root_cert_sn)):
            if not sent[name]:
                raise GatewayError("40001", "Missing Required Arguments", f"isv.missing-{name.replace('_', '-')}", f"缺少{name}参数")
            if sent[name] != expected:
                raise invalid(f"isv.invalid-{name.replace('_', '-')}", f"{name} 与应用的证书不匹配")

    # --- the app's SDK: alipay.trade.app.pay -----------------------------------------------------

    def app_pay(self, order_str: bytes, outcome: str = "success", lost_answers: int = 0) -> Dict[str, str]:
        """What Alipay's mobile SDK hands back to the app for ``order_str``: 9000 paid, 6001 the
        buyer cancelled (the trade closes), 4000 failed (bad signature or parameters)."""
        if outcome not in OUTCOMES:
            return sdk_result("4000", f"unknown outcome {outcome[:20]!r}; use one of {', '.join(OUTCOMES)}")
        status = TRADE_CLOSED if outcome == "closed" else TRADE_SUCCESS
        try:
            request = self.verify_request(parse_form(order_str, request_codec(order_str)), orderstr.APP_PAY_METHOD)
            with self.ledger.transaction():  # open and settle as one step: one payment per trade
                trade = self.settle(self.open_trade(request, orderstr.APP_PAY_PRODUCT_CODE).out_trade_no, status)
        except GatewayError as exc:
            return sdk_result("4000", f"{exc.sub_code}: {exc.sub_msg}")
        if outcome != "drop":
            self.notify(trade.out_trade_no, lost_answers)
        if outcome == "closed":
            return sdk_result("6001", "用户中途取消")
        response = {
            "code": "10000",
            "msg": "Success",
            "app_id": self.app_id,
            "auth_app_id": self.app_id,
            "charset": request.params["charset"],
            "timestamp": clock.alipay_timestamp(),
            "out_trade_no": trade.out_trade_no,
            "total_amount": trade.total_amount,
            "trade_no": trade.trade_no,
            "seller_id": self.seller_id,
        }
        answer = self.signed_json("alipay_trade_app_pay_response", response, sign_type=True, charset=request.params["charset"])
        return sdk_result("9000", "", answer)

    def open_trade(self, request: GatewayRequest, product_code: str) -> Trade:
        """Check a pay request's biz_content and create its trade, or return the unpaid trade
        already open for the same out_trade_no and order (refuse a paid, closed or altered one)."""
        biz = check_pay_biz(request.biz, product_code, request.params["timestamp"])
        notify_url = request.params.get("notify_url") or None
        if notify_url and not re.match(r"^https?://[^\s]+$", notify_url):
            raise invalid("isv.invalid-notify-url", "notify_url 格式错误")
        with self.ledger.transaction():  # one check-and-insert, like Alipay's unique out_trade_no
            existing = self.ledger.find(biz["out_trade_no"])
            if existing is not None:
                if existing.status == TRADE_SUCCESS:
                    raise business("ACQ.TRADE_HAS_SUCCESS", "交易已被支付")
                if existing.status == TRADE_CLOSED:
                    raise business("ACQ.TRADE_HAS_CLOSE", "交易已经关闭")
                if existing.total_amount != biz["total_amount"] or existing.subject != biz["subject"]:
                    raise business("ACQ.CONTEXT_INCONSISTENT", "交易信息被篡改")
                return existing
            trade = Trade(
                out_trade_no=biz["out_trade_no"], trade_no=self.ledger.new_trade_no(), app_id=self.app_id,
                seller_id=self.seller_id, total_amount=biz["total_amount"], subject=biz["subject"],
                product_code=product_code, notify_url=notify_url, charset=request.params["charset"],
            )
            self.ledger.add(trade)
            return trade

    def settle(self, out_trade_no: str, status: str) -> Trade:
        """The buyer paid (TRADE_SUCCESS) or gave up (TRADE_CLOSED): record it on the trade."""
        now = clock.alipay_timestamp()

        def change(trade: Trade) -> Trade:
            trade.status = status
            if status == TRADE_SUCCESS:
                trade.gmt_payment = now
            else:
                trade.gmt_close = now
            return trade

        return self.ledger.update(out_trade_no, change)

    def notify(self, out_trade_no: str, lost_answers: int = 0, extra: Optional[Mapping[str, str]] = None) -> None:
        """Start Alipay's notify of the trade's current status to its notify_url (if it has one)."""
        trade = self.ledger.find(out_trade_no)
        if trade is not None and trade.notify_url:
            notify_id = secrets.token_hex(17)
            # The event as it happened: Alipay's retries resend it, whatever the trade became since
            # (a TRADE_SUCCESS still queued is retried as TRADE_SUCCESS after a refund closed the trade).
            event = {"trade_status": trade.status, "gmt_payment": trade.gmt_payment, "gmt_close": trade.gmt_close}
            sign = lambda: self.signed_notify(out_trade_no, notify_id, extra, event)  # noqa: E731 - re-signed per attempt
            self.notifier.send(out_trade_no, trade.notify_url, sign, lost_answers)

    def signed_notify(
        self, out_trade_no: str, notify_id: str, extra: Optional[Mapping[str, str]] = None,
        event: Optional[Mapping[str, Optional[str]]] = None,
    ) -> Dict[str, str]:
        """The trade_status_sync notify of ``event`` (the trade's status and times when it was
        sent; default: now), freshly signed (``extra``: fields of the event, e.g. a refund's
        refund_fee / gmt_refund / out_biz_no)."""
        trade = self.ledger.find(out_trade_no)
        event = event or {"trade_status": trade.status, "gmt_payment": trade.gmt_payment, "gmt_close": trade.gmt_close}
        status, gmt_payment, gmt_close = event["trade_status"], event["gmt_payment"], event["gmt_close"]
        times = {"gmt_payment": gmt_payment} if gmt_payment else {"gmt_close": gmt_close or ""}
        if gmt_payment and gmt_close:  # paid, then refunded in full: Alipay sends both
            times["gmt_close"] = gmt_close
        params = alipay.notify_params(
            app_id=trade.app_id, out_trade_no=trade.out_trade_no, total_amount=trade.total_amount,
            trade_status=status, trade_no=trade.trade_no, seller_id=trade.seller_id, charset=trade.charset,
            notify_id=notify_id, subject=trade.subject, gmt_create=trade.gmt_create,
            buyer_id=trade.buyer_id, **times,
        )
        if status != TRADE_SUCCESS and not gmt_payment:
            for unpaid in ("receipt_amount", "buyer_pay_amount"):
                params.pop(unpaid, None)
        params.update(extra or {})
        return alipay.sign_notify(params, self.alipay_private_key)

    # --- the server-side gateway: /sandbox/gateway.do --------------------------------------------

    def gateway(self, query: bytes, body: bytes) -> Tuple[int, str, bytes]:
        """Answer one gateway call (parameters in the query, the form body, or both, as the
        official SDKs split them): (HTTP status, content type, body). HTTP 200 like Alipay.
        Read, signed and answered in the charset the request declares. ``gateway_latency`` delays
        each answer, as the round trip from AWS to Alipay does."""
        if self.gateway_latency > 0:
            time.sleep(self.gateway_latency)
        key, name, request = "error_response", charset.declared(query, body), None
        if charset.codec(name) is None:
            name = None  # refused below, in utf-8
        encrypted = False
        try:
            codec = request_codec(query, body)
            params = parse_form(query, codec)
            for field, value in parse_form(body, codec).items():
                if field in params:
                    raise invalid("isv.invalid-parameter", f"重复的参数 {field[:40]}")
                params[field] = value
            method = params.get("method", "")
            handler = GATEWAY_METHODS.get(method)
            if handler is None:
                if not method:
                    raise GatewayError("40001", "Missing Required Arguments", "isv.missing-method", "缺少方法名参数")
                raise invalid("isv.invalid-method", f"不存在的方法名: {method[:64]}")
            key = method.replace(".", "_") + "_response"
            request = self.verify_request(params)
            encrypted = request.encrypted
            result = handler(self, request)
        except GatewayError as exc:
            result = exc.fields()
        lost = key != "error_response" and self._take_lost_answer()
        if request is not None and not isinstance(result, RawReply):  # the checkout's timeline: the shop's calls
            answer = result.get("trade_status") or result.get("sub_code") or result.get("msg") or "Success"
            self.ledger.record_event(request.biz.get("out_trade_no"), f"{request.method} → {answer}{' (answer lost)' if lost else ''}")
        if lost:
            raise AnswerLost(f"{key[:-len('_response')]}: applied, answer lost")
        if isinstance(result, RawReply):
            return result.status, result.content_type, result.body
        fields = result if "code" in result else {"code": "10000", "msg": "Success", **result}
        answer = self.signed_json(key, fields, charset=name, encrypted=encrypted)
        return 200, charset.content_type("application/json", name), answer.encode(charset.codec(name))

    def signed_json(self, key: str, fields: Mapping[str, Any], sign_type: bool = False, charset: Optional[str] = None,
                    encrypted: bool = False) -> str:
        """``{"<key>":{...},"sign":"..."}`` signed over the exact text of the ``{...}``, encoded in
        the request's ``charset`` as Alipay signs it (utf-8 by default); with ``encrypted``,
        ``{"<key>":"<ciphertext>",...}`` signed over the quoted ciphertext."""
        content = json.dumps(fields, ensure_ascii=False, separators=(",", ":"))
        if encrypted and self.aes_key is not None:
            content = json.dumps(aes.encrypt(content, self.aes_key))
        return alipay.signed_response(
            key, content, self.alipay_private_key, sign_type,
            alipay_cert_sn=self.certs.alipay_cert_sn if self.certs is not None else None, charset=charset,
        )


def sdk_result(status: str, memo: str, result: str = "") -> Dict[str, str]:
    """The map Alipay's mobile SDK returns from ``payV2``."""
    return {"resultStatus": status, "memo": memo, "result": result}


def request_codec(*forms: bytes) -> str:
    """The codec of the charset the request declares (utf-8 when none); Alipay's error if unknown."""
    codec = charset.codec(charset.declared(*forms))
    if codec is None:
        raise invalid("isv.invalid-charset", "字符集错误")
    return codec


def parse_form(raw: bytes, codec: str = "utf-8") -> Dict[str, str]:
    """A url-encoded parameter string (orderStr, gateway body) whose escapes are ``codec`` text;
    a repeated key is an error."""
    try:
        pairs = parse_qsl(raw.decode("ascii"), keep_blank_values=True, strict_parsing=bool(raw.strip()), encoding=codec, errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise invalid("isv.invalid-parameter", "参数格式错误") from None
    params: Dict[str, str] = {}
    for key, value in pairs:
        if key in params:
            raise invalid("isv.invalid-parameter", f"重复的参数 {key[:40]}")
        params[key] = value
    return params


def amount_cents(value: Any, malformed: GatewayError, out_of_range: GatewayError) -> int:
    """An amount field of biz_content in cents: a string of at most two decimals (else
    ``malformed`` is raised) within Alipay's range (else ``out_of_range``)."""
    if not isinstance(value, str) or not AMOUNT_RE.fullmatch(value):
        raise malformed
    try:
        return money.yuan_to_cents(value)
    except money.InvalidAmount:
        raise out_of_range from None


def check_pay_biz(biz: Mapping[str, Any], product_code: str, timestamp: str) -> Dict[str, str]:
    """The pay rules Alipay applies to biz_content: out_trade_no, amount, subject, product code,
    and a timeout that has not run out since the request was signed."""
    out_trade_no = biz.get("out_trade_no")
    if not isinstance(out_trade_no, str) or not validation.OUT_TRADE_NO_RE.match(out_trade_no):
        raise invalid("isv.invalid-out-trade-no", "out_trade_no 只能由字母、数字、下划线组成，不超过64位")
    cents = amount_cents(
        biz.get("total_amount"), invalid("isv.invalid-total-amount", "total_amount 格式错误"),
        invalid("isv.invalid-total-amount", "total_amount 取值范围 [0.01,100000000]"),
    )
    subject = biz.get("subject")
    if not isinstance(subject, str) or not subject.strip() or len(subject) > 256:
        raise invalid("isv.invalid-subject", "subject 不能为空且不超过256个字符")
    if biz.get("product_code") != product_code:
        raise invalid("isv.invalid-product-code", f"product_code 须为 {product_code}")
    expires = expiry(biz, clock.parse_alipay_time(timestamp))
    if expires is not None and clock.now() >= expires:
        raise business("ACQ.TRADE_HAS_CLOSE", "交易已超时关闭")
    return {"out_trade_no": out_trade_no, "total_amount": money.cents_to_yuan(cents), "subject": subject}


def expiry(biz: Mapping[str, Any], signed_at: datetime) -> Optional[datetime]:
    """When the unpaid trade closes: ``time_expire`` if given, else ``timeout_express`` (1m-15d,
    ``1c`` = end of the day) counted from the request's timestamp; None means Alipay's default."""
    if biz.get("time_expire"):
        try:
            return clock.parse_alipay_time(str(biz["time_expire"]))
        except ValueError:
            raise invalid("isv.invalid-time-expire", "time_expire 格式须为 yyyy-MM-dd HH:mm:ss") from None
    text = biz.get("timeout_express")
    if not text:
        return None
    match = TIMEOUT_RE.match(str(text))
    if not match:
        raise invalid("isv.invalid-timeout-express", "timeout_express 取值范围 1m～15d，或 1c")
    if match.group(0) == "1c":
        return signed_at.replace(hour=0, minute=0, second=0) + timedelta(days=1)
    number, unit = int(match.group(1)), match.group(2)
    span = {"m": timedelta(minutes=number), "h": timedelta(hours=number), "d": timedelta(days=number)}[unit]
    if not timedelta(minutes=1) <= span <= MAX_TIMEOUT:
        raise invalid("isv.invalid-timeout-express", "timeout_express 取值范围 1m～15d，或 1c")
    return signed_at + span


# --- gateway methods ---------------------------------------------------------------------------

@gateway_method("alipay.trade.query")
def trade_query(sandbox: Sandbox, request: GatewayRequest) -> Dict[str, Any]:
    """The trade's status as Alipay records it, by out_trade_no or trade_no."""
    out_trade_no, trade_no = request.biz.get("out_trade_no"), request.biz.get("trade_no")
    if not out_trade_no and not trade_no:
        raise invalid("isv.missing-out-trade-no", "out_trade_no 和 trade_no 不能同时为空")
    trade = sandbox.ledger.find(out_trade_no, trade_no)
    if trade is None:
        raise business("ACQ.TRADE_NOT_EXIST", "交易不存在")
    paid = trade.gmt_payment is not None  # also after a full refund closed it (TRADE_CLOSED with send_pay_date)
    fields = {
        "trade_no": trade.trade_no,
        "out_trade_no": trade.out_trade_no,
        "buyer_logon_id": trade.buyer_logon_id,
        "trade_status": trade.status,
        "total_amount": trade.total_amount,
        "buyer_pay_amount": trade.total_amount if paid else "0.00",
        "receipt_amount": trade.total_amount if paid else "0.00",
        "buyer_user_id": trade.buyer_id,
    }
    if paid:
        fields["send_pay_date"] = trade.gmt_payment
    if trade.status == WAIT_BUYER_PAY:
        fields.pop("buyer_user_id")
    return fields


def find_trade(sandbox: Sandbox, biz: Mapping[str, Any]) -> Trade:
    """The trade a request names by out_trade_no and/or trade_no, or Alipay's error."""
    out_trade_no, trade_no = biz.get("out_trade_no"), biz.get("trade_no")
    if not out_trade_no and not trade_no:
        raise invalid("isv.missing-out-trade-no", "out_trade_no 和 trade_no 不能同时为空")
    trade = sandbox.ledger.find(out_trade_no, trade_no)
    if trade is None:
        raise business("ACQ.TRADE_NOT_EXIST", "交易不存在")
    return trade


@gateway_method("alipay.trade.close")
def trade_close(sandbox: Sandbox, request: GatewayRequest) -> Dict[str, Any]:
    """Close an unpaid trade so it can no longer be paid; a paid or closed one is refused."""
    with sandbox.ledger.transaction():
        trade = find_trade(sandbox, request.biz)
        if trade.status != WAIT_BUYER_PAY:
            raise business("ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
        sandbox.settle(trade.out_trade_no, TRADE_CLOSED)
    return {"trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no}


def refunds_of(trade: Trade) -> Dict[str, Dict[str, str]]:
    """The trade's refunds in the ledger: out_request_no -> {refund_amount, gmt_refund_pay}."""
    return trade.extra.setdefault("refunds", {})


@gateway_method("alipay.trade.refund")
def trade_refund(sandbox: Sandbox, request: GatewayRequest) -> Dict[str, Any]:
    """Refund part or all of a paid trade. out_request_no (default: out_trade_no) makes a repeat
    answer the first result without moving money again (``fund_change`` N); a full refund
    closes the trade. Each refund is notified, as Alipay does (refund_fee, gmt_refund, out_biz_no)."""
    biz = request.biz
    cents = amount_cents(
        biz.get("refund_amount"), invalid("isv.invalid-refund-amount", "refund_amount 格式错误"),
        business("ACQ.REASON_TRADE_REFUND_FEE_ERR", "退款金额无效"),
    )
    return make_refund(sandbox, biz, cents, biz.get("out_request_no"))


def make_refund(sandbox: Sandbox, ref: Mapping[str, Any], cents: int, out_request_no: Optional[str]) -> Dict[str, Any]:
    """Refund ``cents`` of the trade ``ref`` names (out_trade_no / trade_no), as Alipay does for
    the gateway and its merchant console alike: the answer's fields, and the refund notify."""
    with sandbox.ledger.transaction():
        trade = find_trade(sandbox, ref)
        refunds = refunds_of(trade)
        request_no = out_request_no or trade.out_trade_no
        done = refunds.get(request_no)
        if done is not None and done["refund_amount"] != money.cents_to_yuan(cents):
            raise business("ACQ.DISCORDANT_REPEAT_REQUEST", "不一致的请求")
        if done is None:
            if trade.status != TRADE_SUCCESS:
                raise business("ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
            refunded = sum(money.yuan_to_cents(r["refund_amount"]) for r in refunds.values())
            total = money.yuan_to_cents(trade.total_amount)
            if refunded + cents > total:
                raise business("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "退款金额超限")
            done = refunds[request_no] = {"refund_amount": money.cents_to_yuan(cents), "gmt_refund_pay": clock.alipay_timestamp()}
            if refunded + cents == total:
                sandbox.settle(trade.out_trade_no, TRADE_CLOSED)
            fund_change = "Y"
        else:
            fund_change = "N"
        refund_fee = money.cents_to_yuan(sum(money.yuan_to_cents(r["refund_amount"]) for r in refunds.values()))
    if fund_change == "Y":
        extra = {"refund_fee": refund_fee, "gmt_refund": done["gmt_refund_pay"] + ".000", "out_biz_no": request_no}
        sandbox.notify(trade.out_trade_no, extra=extra)
    return {
        "trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no, "buyer_logon_id": trade.buyer_logon_id,
        "fund_change": fund_change, "refund_fee": refund_fee, "gmt_refund_pay": done["gmt_refund_pay"],
        "buyer_user_id": trade.buyer_id,
    }


# --- precreate (the QR code); page / wap pay's cashier is local/cashier.py -----------------------

PRECREATE_METHOD = "alipay.trade.precreate"
PRECREATE_PRODUCT_CODE = "FACE_TO_FACE_PAYMENT"
QR_PREFIX = "https://qr.alipay.com/sandbox"  # + trade_no: what the buyer's phone reads from the code


@gateway_method(PRECREATE_METHOD)
def trade_precreate(sandbox: Sandbox, request: GatewayRequest) -> Dict[str, Any]:
    """An unpaid trade and the QR code that pays it; ``scan`` plays the buyer scanning it."""
    trade = sandbox.open_trade(request, PRECREATE_PRODUCT_CODE)
    return {"out_trade_no": trade.out_trade_no, "qr_code": QR_PREFIX + trade.trade_no}


def scan(sandbox: Sandbox, out_trade_no: str, outcome: str = "success", lost_answers: int = 0) -> Optional[Dict[str, Any]]:
    """The buyer scans a precreated QR code: pays (``success``), pays without a notify (``drop``)
    or gives up (``closed``). None when there is no such unpaid trade."""
    status = TRADE_CLOSED if outcome == "closed" else TRADE_SUCCESS
    with sandbox.ledger.transaction():
        trade = sandbox.ledger.find(out_trade_no)
        if trade is None or trade.status != WAIT_BUYER_PAY:
            return None
        sandbox.settle(out_trade_no, status)
    if outcome != "drop":
        sandbox.notify(out_trade_no, lost_answers)
    return sandbox.ledger.snapshot(out_trade_no)


# Gateway methods and routes that live in modules of their own register on import.
from local import bills  # noqa: E402,F401 - alipay.data.dataservice.bill.downloadurl.query
from local import sandbox_trades  # noqa: E402,F401 - registers create, pay and cancel into GATEWAY_METHODS
from local import cashier  # noqa: E402,F401 - registers page/wap pay (the cashier) in GATEWAY_METHODS
from local import refund_query  # noqa: E402,F401 - registers alipay.trade.fastpay.refund.query
