"""The page the buyer's browser sees on the return_url: the order as the table holds it.

Seed 000: Alipay's sync return is not reliable, so it is never evidence of payment. The page shows
what only the notify and the query move, escaped everywhere (the subject is the buyer's text).
"""
from __future__ import annotations

import html
from typing import Optional

from .domain import money
from .domain.orders import CLOSED, PAID, Order

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
