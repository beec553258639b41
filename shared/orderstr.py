"""The signed ``alipay.trade.app.pay`` request string the app hands to Alipay's mobile SDK.

Parameters, values and signature equal those of the official SDK's
``DefaultAlipayClient.sdk_execute`` for the same inputs and timestamp (tests/unit/test_orderstr_sdk.py),
except that our timestamp is Shanghai time whatever the process TZ.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Dict, Mapping, Optional

from cryptography.hazmat.primitives.asymmetric import rsa

from . import clock, money, signing, urlcode

APP_PAY_METHOD = "alipay.trade.app.pay"
APP_PAY_PRODUCT_CODE = "QUICK_MSECURITY_PAY"
DEFAULT_TIMEOUT_EXPRESS = "30m"
CHARSET = "utf-8"


@dataclass(frozen=True)
class AppPayOrder:
    """What the buyer is asked to pay; becomes the request's ``biz_content``."""

    out_trade_no: str
    total_cents: int
    subject: str
    body: Optional[str] = None
    timeout_express: str = DEFAULT_TIMEOUT_EXPRESS

    def biz_content(self) -> Dict[str, str]:
        biz = {
            "out_trade_no": self.out_trade_no,
            "total_amount": money.cents_to_yuan(self.total_cents),
            "subject": self.subject,
            "product_code": APP_PAY_PRODUCT_CODE,
            "timeout_express": self.timeout_express,
        }
        if self.body:
            biz["body"] = self.body
        return biz


def biz_content_json(biz: Mapping[str, Any]) -> str:
    """Compact JSON with sorted keys and raw UTF-8, as the official SDK serialises models."""
    return _BIZ_JSON.encode(biz)


_BIZ_JSON = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"))  # made once, not per call


def common_params(method: str, app_id: str, timestamp: str, notify_url: Optional[str] = None) -> Dict[str, str]:
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
    return params


def signed_params(private_key: rsa.RSAPrivateKey, params: Mapping[str, str]) -> Dict[str, str]:
    """``params`` plus its RSA2 ``sign``; empty values are dropped, as they are from the sign."""
    out = {k: v for k, v in params.items() if v not in ("", None)}
    out["sign"] = signing.sign_params(private_key, out, CHARSET)
    return out


def encode(params: Mapping[str, str]) -> str:
    """Url-encode after signing (``quote_plus`` in the request charset, like the official SDK)."""
    return "&".join([f"{key}={urlcode.quote_plus(value, CHARSET)}" for key, value in params.items()])


def app_pay(
    *,
    app_id: str,
    private_key: rsa.RSAPrivateKey,
    notify_url: str,
    order: AppPayOrder,
    at: Optional[datetime] = None,
) -> str:
    """Build and sign the orderStr for ``alipay.trade.app.pay``."""
    params = common_params(APP_PAY_METHOD, app_id, clock.alipay_timestamp(at), notify_url)
    params["biz_content"] = biz_content_json(order.biz_content())
    return encode(signed_params(private_key, params))
