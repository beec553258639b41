"""Alipay's synchronous return (同步返回): the buyer's browser, back on our return_url.

The return is signed like a notify (``sign`` and ``sign_type`` left out of the content), so it is
parsed and verified by shared/notify.py's code. Seed 000: the return is not reliable, so it is
never evidence of payment — the page only shows the order as the table holds it, which only the
notify and the query move.
"""
from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Optional

from cryptography.hazmat.primitives.asymmetric import rsa

from ..domain import money
from .notify import amount_cents, verified_params
from ..domain.orders import CLOSED, PAID, Order

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


STATUS_TEXT = {
    PAID: ("支付成功", "Paid"),
    CLOSED: ("交易已关闭", "Closed"),
}
PENDING_TEXT = ("支付结果确认中，请稍后刷新", "Waiting for Alipay's confirmation; refresh in a moment")


def render_rejected() -> str:
    """The page for a return we could not verify: it says nothing about any order."""
    return _page("无法验证支付宝返回", "This return could not be verified as Alipay's", "")


def render_unavailable() -> str:
    """The page for our own failure (configuration, DynamoDB): the order is not judged."""
    return _page("暂时无法查询订单", "The order cannot be shown right now; please retry", "")


def render_page(order: Optional[Order]) -> str:
    """A small HTML page with the order's stored state (escaped: the subject is the buyer's text)."""
    if order is None:
        title, detail = "订单不存在", "Order not found"
        rows = ""
    else:
        title, detail = STATUS_TEXT.get(order.status, PENDING_TEXT)
        rows = (
            f"<p>订单号 Order: {html.escape(order.order_num)}</p>"
            f"<p>{html.escape(order.order_name)}: ¥{money.cents_to_yuan(order.total_cents)}</p>"
            f"<p>status: {order.status}</p>"
        )
    return _page(title, detail, rows)


def _page(title: str, detail: str, rows: str) -> str:
    return (
        '<!doctype html><html lang="zh"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title></head><body><h1>{title}</h1><p>{detail}</p>{rows}</body></html>"
    )
