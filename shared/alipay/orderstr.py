"""Signed requests for Alipay's pay APIs, from one builder core.

``app_pay`` (the orderStr the app hands to Alipay's mobile SDK), ``page_pay`` (PC web) and
``wap_pay`` (mobile web) differ only in method, product_code and how the signed parameters travel:
one string for the app SDK; for the browser a GET URL to the gateway, or an auto-submitting form
whose action carries the common parameters and whose body carries ``biz_content`` — exactly as the
official SDK's ``sdk_execute`` / ``page_execute`` do (tests/unit/test_channels_sdk.py). Our
timestamp is Shanghai time whatever the process TZ. Certificate mode adds ``app_cert_sn`` and
``alipay_root_cert_sn`` to the common parameters; nothing else changes. Content encryption
(``aes_key``, shared/alipay/aes.py) adds ``encrypt_type=AES`` and encrypts ``biz_content`` before
the sign is computed, so the sign covers the ciphertext, as the official SDKs do.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Dict, Mapping, Optional

from cryptography.hazmat.primitives.asymmetric import rsa

from ..domain import clock, money
from . import signing, urlcode

if TYPE_CHECKING:  # cert (cryptography.x509) loads only in certificate mode
    from .cert import CertSN

GATEWAY = "https://openapi.alipay.com/gateway.do"
APP_PAY_METHOD = "alipay.trade.app.pay"
APP_PAY_PRODUCT_CODE = "QUICK_MSECURITY_PAY"
PAGE_PAY_METHOD = "alipay.trade.page.pay"
PAGE_PAY_PRODUCT_CODE = "FAST_INSTANT_TRADE_PAY"
WAP_PAY_METHOD = "alipay.trade.wap.pay"
WAP_PAY_PRODUCT_CODE = "QUICK_WAP_WAY"
DEFAULT_TIMEOUT_EXPRESS = "30m"
CHARSET = "utf-8"
BIZ_CONTENT = "biz_content"


@dataclass(frozen=True)
class PayOrder:
    """What the buyer is asked to pay; becomes the request's ``biz_content``."""

    out_trade_no: str
    total_cents: int
    subject: str
    body: Optional[str] = None
    timeout_express: str = DEFAULT_TIMEOUT_EXPRESS

    def biz_content(self, product_code: Optional[str] = APP_PAY_PRODUCT_CODE) -> Dict[str, str]:
        biz = {
            "out_trade_no": self.out_trade_no,
            "total_amount": money.cents_to_yuan(self.total_cents),
            "subject": self.subject,
            "timeout_express": self.timeout_express,
        }
        if product_code:
            biz["product_code"] = product_code
        if self.body:
            biz["body"] = self.body
        return biz


AppPayOrder = PayOrder  # the name app pay had before the other channels shared it


def biz_content_json(biz: Mapping[str, Any]) -> str:
    """Compact JSON with sorted keys and raw UTF-8, as the official SDK serialises models."""
    return _BIZ_JSON.encode(biz)


_BIZ_JSON = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"))  # made once, not per call


def common_params(
    method: str,
    app_id: str,
    timestamp: str,
    notify_url: Optional[str] = None,
    *,
    return_url: Optional[str] = None,
    cert_sn: Optional[CertSN] = None,
) -> Dict[str, str]:
    """The public request parameters every Alipay call carries (seed 000 table)."""
    params = {
        "app_id": app_id,
        "method": method,
        "format": "json",
        "charset": CHARSET,
        "sign_type": "RSA2",
        "timestamp": timestamp,
        "version": "1.0",
    }
    if notify_url:
        params["notify_url"] = notify_url
    if return_url:
        params["return_url"] = return_url
    if cert_sn is not None:
        params.update(cert_sn.params())
    return params


def signed_params(private_key: rsa.RSAPrivateKey, params: Mapping[str, str]) -> Dict[str, str]:
    """``params`` plus its RSA2 ``sign``; empty values are dropped, as they are from the sign."""
    out = {k: v for k, v in params.items() if v not in ("", None)}
    out["sign"] = signing.sign_params(private_key, out, CHARSET)
    return out


def encode(params: Mapping[str, str]) -> str:
    """Url-encode after signing (``quote_plus`` in the request charset, like the official SDK)."""
    return "&".join([f"{key}={urlcode.quote_plus(value, CHARSET)}" for key, value in params.items()])


def with_biz_content(params: Dict[str, str], biz: Mapping[str, Any], aes_key: Optional[bytes] = None) -> Dict[str, str]:
    """``params`` plus ``biz_content``: JSON, or its AES ciphertext and ``encrypt_type`` (before signing)."""
    content = biz_content_json(biz)
    if aes_key is not None:
        from . import aes  # noqa: PLC0415 - only apps with content encryption load the cipher

        params["encrypt_type"] = aes.ENCRYPT_TYPE
        content = aes.encrypt(content, aes_key, CHARSET)
    params[BIZ_CONTENT] = content
    return params


def signed_request(
    method: str,
    *,
    app_id: str,
    private_key: rsa.RSAPrivateKey,
    biz: Mapping[str, Any],
    at: Optional[datetime] = None,
    notify_url: Optional[str] = None,
    return_url: Optional[str] = None,
    cert_sn: Optional[CertSN] = None,
    aes_key: Optional[bytes] = None,
) -> Dict[str, str]:
    """The builder core: common parameters + ``biz_content`` (encrypted when ``aes_key``), signed.
    Every pay API goes through it."""
    params = common_params(
        method, app_id, clock.alipay_timestamp(at), notify_url, return_url=return_url, cert_sn=cert_sn
    )
    return signed_params(private_key, with_biz_content(params, biz, aes_key))


# --- the app SDK's string ------------------------------------------------------------------------

def app_pay(
    *,
    app_id: str,
    private_key: rsa.RSAPrivateKey,
    notify_url: str,
    order: PayOrder,
    at: Optional[datetime] = None,
    cert_sn: Optional[CertSN] = None,
    aes_key: Optional[bytes] = None,
) -> str:
    """Build and sign the orderStr for ``alipay.trade.app.pay``."""
    params = signed_request(
        APP_PAY_METHOD, app_id=app_id, private_key=private_key, biz=order.biz_content(APP_PAY_PRODUCT_CODE),
        at=at, notify_url=notify_url, cert_sn=cert_sn, aes_key=aes_key,
    )
    return encode(params)


# --- the browser's page: GET URL or auto-submitting form -----------------------------------------

@dataclass(frozen=True)
class PageRequest:
    """One signed browser request, in both of the forms the official SDK's ``page_execute`` gives."""

    gateway: str
    params: Mapping[str, str]

    def _split(self) -> tuple[Dict[str, str], Dict[str, str]]:
        common = {k: v for k, v in self.params.items() if k != BIZ_CONTENT}
        return common, {BIZ_CONTENT: self.params[BIZ_CONTENT]}

    @property
    def url(self) -> str:
        """``page_execute(..., "GET")``: everything in the query string; redirect the browser to it."""
        common, biz = self._split()
        return f"{self.gateway}?{encode(common)}&{encode(biz)}"

    @property
    def form(self) -> str:
        """``page_execute(..., "POST")``: a form posting ``biz_content`` that submits itself.

        Values are HTML-escaped (the SDK escapes only ``"``), so a subject with ``&`` or ``<``
        reaches Alipay exactly as signed and cannot inject markup.
        """
        common, biz = self._split()
        import html  # noqa: PLC0415 - only the page/wap form needs it

        action = html.escape(f"{self.gateway}?{encode(common)}", quote=True)
        inputs = "".join(
            f'<input type="hidden" name="{html.escape(k, quote=True)}" value="{html.escape(v, quote=True)}">\n'
            for k, v in biz.items()
        )
        return (
            f'<form name="punchout_form" method="post" action="{action}">\n{inputs}'
            '<input type="submit" value="立即支付" style="display:none" >\n'
            "</form>\n<script>document.forms[0].submit();</script>"
        )


def page_pay(*, order: PayOrder, return_url: Optional[str] = None, gateway: str = GATEWAY, **signer: Any) -> PageRequest:
    """``alipay.trade.page.pay`` (PC web, FAST_INSTANT_TRADE_PAY).

    ``signer``: ``app_id``, ``private_key``, ``notify_url`` and optionally ``at``, ``cert_sn``, ``aes_key``, as for ``app_pay``.
    """
    biz = order.biz_content(PAGE_PAY_PRODUCT_CODE)
    return PageRequest(gateway, signed_request(PAGE_PAY_METHOD, biz=biz, return_url=return_url, **signer))


def wap_pay(*, order: PayOrder, return_url: Optional[str] = None, gateway: str = GATEWAY, **signer: Any) -> PageRequest:
    """``alipay.trade.wap.pay`` (mobile web, QUICK_WAP_WAY); ``signer`` as for ``page_pay``."""
    biz = order.biz_content(WAP_PAY_PRODUCT_CODE)
    return PageRequest(gateway, signed_request(WAP_PAY_METHOD, biz=biz, return_url=return_url, **signer))
