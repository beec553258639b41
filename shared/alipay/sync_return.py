"""Alipay's synchronous return (同步返回): the buyer's browser, back on our return_url.

The return is signed like a notify (``sign`` and ``sign_type`` left out of the content), so it is
parsed and verified by notify.py's code. Seed 000: the return is not reliable, so it is never
evidence of payment; the page the buyer sees is shared/return_page.py's.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from cryptography.hazmat.primitives.asymmetric import rsa

from .notify import amount_cents, verified_params

REQUIRED = ("app_id", "out_trade_no")


@dataclass(frozen=True)
class SyncReturn:
    """A verified return: which order the browser comes back for."""

    out_trade_no: str
    trade_no: Optional[str]
    total_cents: Optional[int]


def verify_return(
    query: bytes, *, public_key: rsa.RSAPublicKey, app_id: str, alipay_cert_sn: Optional[str] = None
) -> SyncReturn:
    """Parse and verify the return's query string; ``NotifyRejected`` when it is not Alipay's or ours."""
    params = verified_params(query, public_key=public_key, app_id=app_id, required=REQUIRED, alipay_cert_sn=alipay_cert_sn)
    cents = amount_cents(params["total_amount"]) if params.get("total_amount") else None
    return SyncReturn(params["out_trade_no"], params.get("trade_no") or None, cents)
