"""Order events: what the shop's own systems learn when an order changes state.

Derived from the row before and after one write (the Order table's stream carries both images),
so an event exists if and only if the write happened: no handler writes twice. Each event has an
``eventId`` that depends only on the order and the transition, never on delivery, so a consumer
drops duplicates (streams and EventBridge deliver at least once) by remembering the ids it saw.

| write (old -> new)                                  | event                          |
|-----------------------------------------------------|--------------------------------|
| status becomes 1 (paid)                             | ``OrderPaid``                  |
| status becomes 2 (closed)                           | ``OrderClosed``                |
| a refund entry becomes REFUNDED (ours or Alipay's)  | ``OrderRefunded``, one per refund |
| anything else (create, reschedule, refund reserved) | none                           |
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from .orders import CLOSED, PAID, REFUND_DONE, Order

ORDER_PAID, ORDER_CLOSED, ORDER_REFUNDED = "OrderPaid", "OrderClosed", "OrderRefunded"
DETAIL_TYPES = (ORDER_PAID, ORDER_CLOSED, ORDER_REFUNDED)


@dataclass(frozen=True)
class OrderEvent:
    """One event for the bus: its ``detail-type`` and ``detail`` (``detail["eventId"]`` is stable)."""

    detail_type: str
    detail: Dict[str, Any]

    @property
    def event_id(self) -> str:
        return self.detail["eventId"]


def event_id(order_num: str, detail_type: str, discriminator: str = "") -> str:
    """Deterministic per transition: an order is paid once and closed once; a refund is one
    ``outRequestNo``. 32 hex characters of SHA-256, so ids never collide across orders."""
    return hashlib.sha256(f"{order_num}\x1f{detail_type}\x1f{discriminator}".encode("utf-8")).hexdigest()[:32]


def _base(order: Order, detail_type: str, at: str, discriminator: str = "") -> Dict[str, Any]:
    return {
        "eventId": event_id(order.order_num, detail_type, discriminator),
        "outTradeNo": order.order_num,
        "userId": order.user_id,
        "productId": order.product_id,
        "totalAmount": order.total_cents,
        "tradeNo": order.trade_no,
        "status": order.status,
        "time": at,
    }


def refunded_cents(order: Order) -> int:
    """Cents Alipay confirmed refunded (``refundedAmount`` also counts refunds still in flight)."""
    return sum(refund.cents for refund in order.refunds.values() if refund.status == REFUND_DONE)


def order_events(before: Optional[Order], after: Optional[Order], at: str) -> List[OrderEvent]:
    """The events one write made, in the order a consumer should apply them (paid before its
    refunds). ``at`` is when the write happened (ISO 8601 with offset)."""
    if after is None:  # a deleted row: no state change a shop acts on
        return []
    found: List[OrderEvent] = []
    if after.status == PAID and (before is None or before.status != PAID):
        detail = _base(after, ORDER_PAID, at)
        detail["payDate"] = after.pay_date
        found.append(OrderEvent(ORDER_PAID, detail))
    if after.status == CLOSED and (before is None or before.status != CLOSED):
        found.append(OrderEvent(ORDER_CLOSED, _base(after, ORDER_CLOSED, at)))
    confirmed = refunded_cents(after)
    for out_request_no, refund in sorted(after.refunds.items(), key=lambda item: (item[1].requested_at, item[0])):
        earlier = before.refunds.get(out_request_no) if before is not None else None
        if refund.status != REFUND_DONE or (earlier is not None and earlier.status == REFUND_DONE):
            continue
        detail = _base(after, ORDER_REFUNDED, at, out_request_no)
        detail.update(
            outRequestNo=out_request_no, refundAmount=refund.cents, refundedAmount=confirmed,
            fullyRefunded=confirmed >= after.total_cents, refundedAt=refund.refunded_at,
        )
        found.append(OrderEvent(ORDER_REFUNDED, detail))
    return found
