"""What the app may know about one order, after Alipay's SDK returns (seed 000: the client-side
result is not authoritative; the order's status comes from the notify, so the app asks us)."""
from __future__ import annotations

from typing import Any, Dict, Optional

from .domain.orders import MADE_AT_ALIPAY, REFUND_FAILED, OrderStore, Refund
from .domain.validation import OUT_TRADE_NO_RE, InvalidInput


def order_status(store: OrderStore, out_trade_no: Optional[str], caller: Optional[str]) -> Optional[Dict[str, Any]]:
    """``{outTradeNo, status, totalAmount (cents), payDate, refundedAmount (cents), refunds}``, or None when the order does not
    exist or belongs to someone else than ``caller`` (the JWT ``sub``; None when no authorizer).
    Both cases look the same, so order numbers cannot be probed for existence."""
    if not out_trade_no or not OUT_TRADE_NO_RE.match(out_trade_no):
        raise InvalidInput("outTradeNo must be 1-64 characters of letters, digits and underscores")
    order = store.get(out_trade_no)
    if order is None or (caller is not None and order.user_id != caller):
        return None
    return {
        "outTradeNo": order.order_num, "status": order.status, "totalAmount": order.total_cents, "payDate": order.pay_date,
        "refundedAmount": order.refunded_cents,
        "refunds": [_refund(request_no, refund) for request_no, refund in sorted(
            order.refunds.items(), key=lambda item: (item[1].requested_at, item[0]))],
    }


def _refund(out_request_no: str, refund: Refund) -> Dict[str, Any]:
    """One refund as the app sees it: ``madeAtAlipay`` when it was made outside this backend."""
    shown: Dict[str, Any] = {
        "outRequestNo": out_request_no, "amount": refund.cents, "status": refund.status,
        "requestedAt": refund.requested_at, "refundedAt": refund.refunded_at,
        "madeAtAlipay": refund.origin == MADE_AT_ALIPAY,
    }
    if refund.status == REFUND_FAILED and refund.reason:
        shown["reason"] = refund.reason
    return shown
