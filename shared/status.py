"""What the app may know about one order, after Alipay's SDK returns (seed 000: the client-side
result is not authoritative; the order's status comes from the notify, so the app asks us)."""
from __future__ import annotations

from typing import Any, Dict, Optional

from .domain.orders import OrderStore
from .domain.validation import OUT_TRADE_NO_RE, InvalidInput


def order_status(store: OrderStore, out_trade_no: Optional[str], caller: Optional[str]) -> Optional[Dict[str, Any]]:
    """``{outTradeNo, status, totalAmount (cents), payDate}``, or None when the order does not
    exist or belongs to someone else than ``caller`` (the JWT ``sub``; None when no authorizer).
    Both cases look the same, so order numbers cannot be probed for existence."""
    if not out_trade_no or not OUT_TRADE_NO_RE.match(out_trade_no):
        raise InvalidInput("outTradeNo must be 1-64 characters of letters, digits and underscores")
    order = store.get(out_trade_no)
    if order is None or (caller is not None and order.user_id != caller):
        return None
    return {"outTradeNo": order.order_num, "status": order.status, "totalAmount": order.total_cents, "payDate": order.pay_date}
