"""Playing Alipay: key pairs and signed notifies, for tests and local runs.

``sign_notify`` is to our notify handler what stripe-python's test helper is to its webhooks: it
signs a form body exactly as Alipay does (sorted ``k=v`` without ``sign``/``sign_type``, RSA2,
in the notify's charset), so tests exercise the real verification path.
"""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Dict, Mapping, Optional
from urllib.parse import quote_plus

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from shared.domain import clock
from shared.alipay import signing
from shared.alipay.notify import charset_encoding


@dataclass(frozen=True)
class KeyPair:
    """An RSA-2048 key pair with the text forms Alipay's console and SDKs use."""

    private_key: rsa.RSAPrivateKey

    @classmethod
    def generate(cls) -> "KeyPair":
        return cls(rsa.generate_private_key(public_exponent=65537, key_size=2048))

    @property
    def public_key(self) -> rsa.RSAPublicKey:
        return self.private_key.public_key()

    def private_pem(self, pkcs8: bool = True) -> str:
        fmt = serialization.PrivateFormat.PKCS8 if pkcs8 else serialization.PrivateFormat.TraditionalOpenSSL
        return self.private_key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption()).decode()

    def private_base64(self, pkcs8: bool = True) -> str:
        """The bare base64 body (what the official Python SDK takes, with ``pkcs8=False``)."""
        fmt = serialization.PrivateFormat.PKCS8 if pkcs8 else serialization.PrivateFormat.TraditionalOpenSSL
        der = self.private_key.private_bytes(serialization.Encoding.DER, fmt, serialization.NoEncryption())
        return base64.b64encode(der).decode()

    def public_pem(self) -> str:
        return self.public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()

    def public_base64(self) -> str:
        der = self.public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        return base64.b64encode(der).decode()


def notify_params(
    *,
    app_id: str,
    out_trade_no: str,
    total_amount: str,
    trade_status: str = "TRADE_SUCCESS",
    trade_no: str = "2026112622001400000000000001",
    seller_id: str = "2088000000000001",
    charset: str = "utf-8",
    **extra: str,
) -> Dict[str, str]:
    """A ``trade_status_sync`` notify's fields, as Alipay sends them (before signing)."""
    now = clock.alipay_timestamp()
    params = {
        "notify_type": "trade_status_sync",
        "notify_id": "2026112600222000000000000000000001",
        "notify_time": now,
        "charset": charset,
        "version": "1.0",
        "app_id": app_id,
        "out_trade_no": out_trade_no,
        "trade_no": trade_no,
        "trade_status": trade_status,
        "total_amount": total_amount,
        "receipt_amount": total_amount,
        "buyer_pay_amount": total_amount,
        "seller_id": seller_id,
        "buyer_id": "2088102177846880",
        "subject": "order",
        "gmt_create": now,
    }
    if trade_status in ("TRADE_SUCCESS", "TRADE_FINISHED"):
        params["gmt_payment"] = now
    params.update(extra)
    return params


def sign_notify(params: Mapping[str, str], private_key: rsa.RSAPrivateKey, sign_type: str = "RSA2") -> Dict[str, str]:
    """``params`` plus ``sign_type`` and the ``sign`` Alipay would put on them."""
    content = signing.check_content(params)  # Alipay's rule: empty fields are signed too
    signed = dict(params)
    signed["sign_type"] = sign_type
    signed["sign"] = signing.rsa2_sign(private_key, content, charset_encoding(params.get("charset")))
    return signed


def form_body(params: Mapping[str, str], charset: Optional[str] = None) -> bytes:
    """Url-encode a notify the way Alipay posts it (values percent-encoded in its charset)."""
    charset = charset_encoding(charset or params.get("charset"))  # "GB2312" is escaped as gbk
    return "&".join(f"{quote_plus(k)}={quote_plus(v, encoding=charset)}" for k, v in params.items()).encode("ascii")


def signed_response(
    key: str, content: str, private_key: rsa.RSAPrivateKey, sign_type: bool = False, *, alipay_cert_sn: Optional[str] = None,
    charset: Optional[str] = None,
) -> str:
    """``{"<key>":<content>,"sign":"..."}``, signed as Alipay signs gateway answers: over the
    exact text of ``content`` encoded in the request's ``charset`` (UTF-8 by default), embedded
    verbatim. In certificate mode Alipay names the certificate it signed with: ``"alipay_cert_sn"``
    beside ``sign``."""
    sign = signing.rsa2_sign(private_key, content, charset_encoding(charset))
    cert = f',"alipay_cert_sn":"{alipay_cert_sn}"' if alipay_cert_sn else ""
    tail = ',"sign_type":"RSA2"' if sign_type else ""
    return f'{{"{key}":{content}{cert},"sign":"{sign}"{tail}}}'


def response_body(
    method: str,
    payload: Mapping[str, object],
    private_key: rsa.RSAPrivateKey,
    *,
    raw: Optional[str] = None,
    alipay_cert_sn: Optional[str] = None,
) -> bytes:
    """A gateway answer to ``method`` as Alipay sends it. The compact UTF-8 JSON of ``payload``
    is signed, or ``raw`` when given (to sign a particular rendering: spacing, escapes)."""
    text = raw if raw is not None else json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    key = method.replace(".", "_") + "_response"
    return signed_response(key, text, private_key, alipay_cert_sn=alipay_cert_sn).encode("utf-8")
