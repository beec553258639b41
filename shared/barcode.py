"""Barcode pay at a till: ``alipay.trade.pay`` (``scene=bar_code``), then query and cancel.

Alipay answers the till synchronously, but not always finally. The loop every 当面付 integration
runs, bounded here by pay's time budget (shared/budgets.py):

1. ``alipay.trade.pay``: 10000 is paid, applied at once through the transition a notify uses;
   40004 is Alipay's signed refusal (e.g. an invalid code): the order is closed;
   10003 (the buyer confirms on the phone), 20000 or no answer: the outcome is open, so
2. ``alipay.trade.query`` every ``poll`` seconds until paid, closed, or the wait is over;
3. still open: ``alipay.trade.cancel`` right after the last query (it closes an unpaid trade and
   refunds one paid meanwhile), and the order is closed.

The answer is the order's final status (1 paid, 2 closed), or ``PaymentPending`` when Alipay's
answer never came: the caller must look again (``GET /orders/{outTradeNo}``); the unpaid row
stays in the reconcile index, so the trade is settled or closed either way.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Dict, Mapping, Optional

from . import budgets
from .alipay.orderstr import PayOrder
from .config import Settings
from .domain.orders import (
    CLOSED, CLOSED_TRADE_STATUS, PAID, PAID_TRADE_STATUSES, OrderStore, Outcome, apply_trade_status,
)

log = logging.getLogger(__name__)

REFUSED_CODE = "40004"  # Business Failed: Alipay's final word on this payment


class PaymentPending(Exception):
    """Alipay's final answer did not come in time; the order (``order_num``) stays unpaid for now,
    in the reconcile index. The caller must look again, never guess."""

    def __init__(self, order_num: str, reason: str) -> None:
        super().__init__(reason)
        self.order_num = order_num


@dataclass
class Till:
    """The waiting part of the flow, with its clock (real time in Lambda)."""

    wait: float = budgets.BARCODE_WAIT_SECONDS
    poll: float = budgets.BARCODE_POLL_SECONDS
    cancel_window: float = 5.0  # charge() uses budgets.barcode_cancel_window(): one gateway call's timeout
    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic


def charge(
    store: OrderStore, cfg: Settings, order: PayOrder, biz: Mapping[str, str], at: Optional[datetime] = None,
    till: Optional[Till] = None,
) -> Dict[str, str]:
    """Charge the scanned code for ``order`` (its row already stored, unpaid) and settle the row
    before answering: ``{status, tradeNo?, reason?}``."""
    from .alipay.gateway import AlipayError, AlipayGateway, GatewayError  # noqa: PLC0415 - only till/QR pay call Alipay

    if till is None:
        wait, poll = cfg.barcode_wait
        till = Till(wait, poll, budgets.barcode_cancel_window())
    gateway = AlipayGateway.from_settings(cfg)
    end = till.monotonic() + till.wait

    def left() -> float:
        return end - till.monotonic()

    try:
        answer = gateway.trade_pay(order, biz["auth_code"], cfg.notify_url, biz.get("store_id"), at,
                                   timeout=max(left(), 0.001))
        if not answer.waiting:
            return _settle(store, order, "TRADE_SUCCESS", answer.total_cents, answer.trade_no, answer.gmt_payment)
        log.info("barcode %s: the buyer must confirm (10003); polling", order.out_trade_no)
    except AlipayError as exc:
        if exc.code == REFUSED_CODE:
            log.info("barcode %s refused by Alipay: %s", order.out_trade_no, exc.sub_code)
            return {**_settle(store, order, CLOSED_TRADE_STATUS, None, None, None), "reason": exc.sub_code or exc.code}
        log.warning("barcode %s: pay answered %s; querying", order.out_trade_no, exc.code)
    except GatewayError as exc:
        log.warning("barcode %s: no answer to pay (%s); querying", order.out_trade_no, exc)

    while left() > 0:
        till.sleep(min(till.poll, left()))
        if left() <= 0:
            break
        try:
            trade = gateway.trade_query(order.out_trade_no, timeout=left())
        except GatewayError as exc:  # TRADE_NOT_EXIST while the pay is in flight, or no answer
            log.info("barcode %s: query inconclusive (%s)", order.out_trade_no, exc)
            continue
        if trade.trade_status in PAID_TRADE_STATUSES:
            return _settle(store, order, trade.trade_status, trade.total_cents, trade.trade_no, trade.send_pay_date)
        if trade.trade_status == CLOSED_TRADE_STATUS:
            return _settle(store, order, CLOSED_TRADE_STATUS, None, trade.trade_no, None)
    return _cancel(store, gateway, order, till)


def _cancel(store: OrderStore, gateway, order: PayOrder, till: Till) -> Dict[str, str]:
    """``alipay.trade.cancel`` until it answers without retry_flag Y, within the cancel window."""
    from .alipay.gateway import GatewayError  # noqa: PLC0415

    end = till.monotonic() + till.cancel_window
    reason = "no attempt"
    while till.monotonic() < end:
        try:
            cancel = gateway.trade_cancel(order.out_trade_no, timeout=end - till.monotonic())
        except GatewayError as exc:
            reason = str(exc)
            log.warning("barcode %s: cancel failed (%s)", order.out_trade_no, exc)
            till.sleep(min(0.5, max(end - till.monotonic(), 0)))
            continue
        if cancel.retry and not cancel.action:
            reason = "Alipay asked for the cancel to be retried"
            till.sleep(min(0.5, max(end - till.monotonic(), 0)))
            continue
        if cancel.action == "refund":
            log.error("barcode %s: a payment landed during the cancel and was refunded in full", order.out_trade_no)
        reason = "cancelled, the payment refunded" if cancel.action == "refund" else "cancelled"
        return {**_settle(store, order, CLOSED_TRADE_STATUS, None, cancel.trade_no, None), "reason": reason}
    raise PaymentPending(order.out_trade_no, f"the cancel got no final answer ({reason})")


def _settle(
    store: OrderStore, order: PayOrder, trade_status: str, cents: Optional[int], trade_no: Optional[str],
    paid_at_text: Optional[str],
) -> Dict[str, str]:
    """Apply Alipay's word through the notify's transition; the order's resulting status."""
    from .domain import clock  # noqa: PLC0415

    try:
        paid_at = clock.parse_alipay_time(paid_at_text) if paid_at_text else None
        transition = apply_trade_status(store, order.out_trade_no, trade_status, cents, trade_no, paid_at)
    except Exception as exc:  # noqa: BLE001 - Alipay's answer stands; the notify or reconcile applies it
        log.exception("barcode %s: could not record %s", order.out_trade_no, trade_status)
        raise PaymentPending(order.out_trade_no, f"could not record {trade_status}") from exc
    outcome = transition.outcome
    if outcome in (Outcome.APPLIED, Outcome.ALREADY):
        status = PAID if trade_status in PAID_TRADE_STATUSES else CLOSED
    elif outcome is Outcome.KEPT and transition.before is not None:
        status = transition.before.status  # closed after paid: a paid order is never downgraded
    else:
        log.error("barcode %s: %s not applied (%s)", order.out_trade_no, trade_status, outcome.value)
        raise PaymentPending(order.out_trade_no, f"{trade_status} not applied: {outcome.value}")
    data = {"status": status}
    if trade_no:
        data["tradeNo"] = trade_no
    return data
