"""Alipay's OpenAPI v3 on the emulator: ``POST /sandbox/v3/alipay/trade/query`` and every other
JSON method of ``GATEWAY_METHODS``, as Alipay's Node SDK v4 ``curl()`` and the Java v3 SDK call it.

- The request: a JSON body (the v1 ``biz_content``; ``notify_url`` travels in it), signed in the
  ``authorization`` header: ``ALIPAY-SHA256withRSA app_id=…,nonce=…,timestamp=…,sign=…`` where
  ``sign`` is RSA2 over ``"{auth}\\n{METHOD}\\n{path?query}\\n{body}\\n"`` (plus the app auth token
  and ``\\n`` when sent). ``timestamp`` is epoch milliseconds, within five minutes; a nonce is
  accepted once. With ``alipay-encrypt-type: AES`` the body is the ciphertext (text/plain).
- The answer: HTTP 200 and the business fields as JSON (no ``code``/``msg`` envelope), signed in
  ``alipay-signature`` over ``"{alipay-timestamp}\\n{alipay-nonce}\\n{body}\\n"``, encrypted when
  the request was. Errors: HTTP 4xx/5xx ``{"code", "message"}`` (401 for a bad signature), which
  the SDK raises as ``AlipayRequestError`` with that code and message.
- The method handlers are the v1 ones (local/sandbox.py, local/sandbox_trades.py): one ledger, one
  set of business rules for both protocols. trade.pay's "waiting for the buyer" (v1 10003) is a
  200 without ``gmt_payment``: query the trade, as for v1.
"""
from __future__ import annotations

import json
import re
import secrets
import threading
import time
import uuid
from typing import Dict, Mapping, Optional, Tuple

from shared.domain import clock
from shared.alipay import aes, signing

from local.sandbox import GATEWAY_METHODS, GatewayError, GatewayRequest, RawReply, Sandbox

PREFIX = "/v3/"
AUTH_SCHEME = "ALIPAY-SHA256withRSA"
MAX_SKEW_MS = 5 * 60 * 1000
_AUTH_FIELD = re.compile(r"([a-z_]+)=([^,]*)")
_seen_nonces: Dict[str, int] = {}
_nonce_lock = threading.Lock()

Reply = Tuple[int, str, bytes, Dict[str, str]]


def method_of(path: str) -> Optional[str]:
    """``/v3/alipay/trade/query`` -> ``alipay.trade.query`` (None when the path is not a method's)."""
    if not path.startswith(PREFIX) or not re.fullmatch(r"[a-z0-9/]{1,128}", path[len(PREFIX):]):
        return None
    return path[len(PREFIX):].replace("/", ".")


def answer(sandbox: Sandbox, http_method: str, path: str, query: str, headers: Mapping[str, str], body: bytes) -> Reply:
    """One v3 call: (HTTP status, content type, body, headers)."""
    headers = {k.lower(): v for k, v in headers.items()}
    encrypted = headers.get("alipay-encrypt-type", "").upper() == aes.ENCRYPT_TYPE
    try:
        method = method_of(path)
        handler = GATEWAY_METHODS.get(method or "")
        if handler is None:
            return error(404, "INTERFACE_NOT_EXIST", f"接口不存在: {path[:80]}")
        if http_method != "POST":
            return error(405, "METHOD_NOT_ALLOWED", "请使用 POST")
        auth = verify_authorization(sandbox, http_method, path + (f"?{query}" if query else ""), headers, body)
        text = body.decode("utf-8")
        if encrypted:
            if sandbox.aes_key is None:
                return error(400, "invalid-encrypt", "应用未开启接口内容加密")
            text = aes.decrypt(text, sandbox.aes_key)
        elif sandbox.aes_key is not None and text:
            return error(400, "invalid-encrypt", "应用已开启接口内容加密，请求须加密")
        biz = json.loads(text or "{}")
        if not isinstance(biz, dict):
            return error(400, "INVALID_PARAMETER", "请求体须为 JSON 对象")
    except Unauthorized as exc:
        return error(401, exc.code, str(exc))
    except (UnicodeDecodeError, ValueError, aes.AesError):
        return error(400, "INVALID_PARAMETER", "请求体不是合法的 JSON（或无法解密）")
    params = {"app_id": auth["app_id"], "method": method, "charset": "utf-8", "sign_type": "RSA2",
              "timestamp": clock.alipay_timestamp(), "version": "1.0"}
    if isinstance(biz.get("notify_url"), str):
        params["notify_url"] = biz.pop("notify_url")
    try:
        result = handler(sandbox, GatewayRequest(params, biz, encrypted))
    except GatewayError as exc:
        return error(500 if exc.code == "20000" else 400, exc.sub_code, exc.sub_msg)
    if isinstance(result, RawReply):
        return error(400, "INVALID_PARAMETER", f"{method} 是页面接口，请用 pageExecute")
    fields = {k: v for k, v in result.items() if k not in ("code", "msg", "sub_code", "sub_msg")}
    return signed(sandbox, 200, json.dumps(fields, ensure_ascii=False, separators=(",", ":")), encrypted)


class Unauthorized(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def verify_authorization(sandbox: Sandbox, http_method: str, url: str, headers: Mapping[str, str], body: bytes) -> Dict[str, str]:
    """The ``authorization`` header checked as Alipay checks it; its fields."""
    value = headers.get("authorization", "")
    scheme, _, rest = value.partition(" ")
    if scheme != AUTH_SCHEME or ",sign=" not in rest:
        raise Unauthorized("missing-signature", f"authorization 须为 {AUTH_SCHEME} app_id=…,nonce=…,timestamp=…,sign=…")
    auth_string, _, sign = rest.rpartition(",sign=")
    fields = dict(_AUTH_FIELD.findall(auth_string))
    for name in ("app_id", "nonce", "timestamp"):
        if not fields.get(name):
            raise Unauthorized("missing-signature", f"authorization 缺少 {name}")
    if fields["app_id"] != sandbox.app_id:
        raise Unauthorized("invalid-app-id", "无效的AppID参数")
    if sandbox.certs is not None:
        if fields.get("app_cert_sn") != sandbox.certs.app_cert_sn:
            raise Unauthorized("invalid-app-cert-sn", "app_cert_sn 与应用的证书不匹配")
        if headers.get("alipay-root-cert-sn") != sandbox.certs.alipay_root_cert_sn:
            raise Unauthorized("invalid-alipay-root-cert-sn", "alipay-root-cert-sn 与应用的证书不匹配")
    now = int(time.time() * 1000)
    if not fields["timestamp"].isdigit() or abs(now - int(fields["timestamp"])) > MAX_SKEW_MS:
        raise Unauthorized("invalid-timestamp", "timestamp 须为毫秒时间戳，与当前时间相差不超过5分钟")
    content = f"{auth_string}\n{http_method}\n{url}\n{body.decode('utf-8', 'replace')}\n"
    if headers.get("alipay-app-auth-token"):
        content += headers["alipay-app-auth-token"] + "\n"
    if not signing.rsa2_verify(sandbox.app_public_key, content, sign):
        raise Unauthorized("invalid-signature", "验签出错")
    with _nonce_lock:  # a nonce is good once within the skew window
        for old in [n for n, at in _seen_nonces.items() if now - at > 2 * MAX_SKEW_MS]:
            del _seen_nonces[old]
        if fields["nonce"] in _seen_nonces:
            raise Unauthorized("invalid-nonce", "nonce 已使用过")
        _seen_nonces[fields["nonce"]] = now
    return fields


def signed(sandbox: Sandbox, status: int, body: str, encrypted: bool = False) -> Reply:
    """An answer signed as Alipay signs v3 answers (over timestamp, nonce and the body as sent)."""
    content_type = "application/json; charset=utf-8"
    if encrypted and sandbox.aes_key is not None:
        body, content_type = aes.encrypt(body, sandbox.aes_key), "text/plain; charset=utf-8"
    timestamp, nonce = str(int(time.time() * 1000)), uuid.uuid4().hex
    headers = {
        "alipay-timestamp": timestamp, "alipay-nonce": nonce,
        "alipay-signature": signing.rsa2_sign(sandbox.alipay_private_key, f"{timestamp}\n{nonce}\n{body}\n"),
        "alipay-trace-id": secrets.token_hex(12),
    }
    if sandbox.certs is not None:
        headers["alipay-sn"] = sandbox.certs.alipay_cert_sn
    return status, content_type, body.encode("utf-8"), headers


def error(status: int, code: str, message: str) -> Reply:
    """v3's error answer: ``{"code", "message"}`` with an HTTP error status (not signed, as Alipay's)."""
    body = json.dumps({"code": code, "message": message}, ensure_ascii=False)
    return status, "application/json; charset=utf-8", body.encode("utf-8"), {"alipay-trace-id": secrets.token_hex(12)}
