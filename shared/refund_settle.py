"""Refunds that settle by themselves: every PENDING refund reaches REFUNDED or FAILED.

A refund stays PENDING when its ``alipay.trade.refund`` got no answer (a timeout, a lost
connection, a system error). Nobody may have to call again: a scheduled pass reads the orders with
pending refunds from the sparse ``refunds-pending`` index (one Query per shard, never a Scan) and,
for each refund pending longer than the grace time, asks ``alipay.trade.fastpay.refund.query``:

- Alipay has it (``refund_status`` REFUND_SUCCESS; in Alipay's older answers, without
  ``refund_status``, the refund's data alone): REFUNDED.
- Alipay has no such refund (10000 without refund data; Alipay's doc: "retry the refund with the
  same out_request_no"): the refund is sent again with the same ``out_request_no``, which Alipay
  never executes twice. Done -> REFUNDED; definitely refused -> FAILED with Alipay's reason, its
  cents given back; anything else -> still PENDING.
- Anything else (another ``refund_status``, no trustworthy answer): still PENDING, looked at again
  later, the longer the refund has been pending (from the grace time up to an hour).

Every write is conditional on the refund still being PENDING, so overlapping passes, a refund call
and a refund notify can race freely: one of them settles, the others find it settled.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Callable, Dict, List, Mapping, Optional, Protocol, Tuple

from . import refunds
from .domain import clock
from .domain.orders import REFUND_PENDING, Order, PendingRefunds, Refund
from .budgets import refund_settle_order_worst_case_seconds
from .environment import int_setting

if TYPE_CHECKING:
    from .alipay.gateway import AlipayGateway

log = logging.getLogger(__name__)

MAX_ORDERS = "REFUND_SETTLE_MAX_ORDERS"
MAX_DELAY = timedelta(hours=1)


@dataclass(frozen=True)
class Policy:
    grace: timedelta = timedelta(seconds=refunds.DEFAULT_GRACE_SECONDS)
    max_orders: int = 100

    @classmethod
    def from_env(cls, environ: Optional[Mapping[str, str]] = None) -> "Policy":
        env = os.environ if environ is None else environ
        return cls(grace=refunds.grace(env), max_orders=int_setting(env, MAX_ORDERS, cls.max_orders, minimum=1))

    def next_look(self, now: datetime, since: datetime) -> datetime:
        """The wait grows with the refund's age: the grace time at first, at most an hour."""
        return now + min(max(self.grace, now - since), MAX_DELAY)


class SettleStore(refunds.RefundStore, Protocol):
    def pending_refund_orders(self, limit: int) -> Tuple[List[PendingRefunds], bool]: ...

    def recheck_refunds(self, row: PendingRefunds, check_at: str, since: str) -> bool: ...

    def leave_refunds_index(self, order_num: str) -> bool: ...


@dataclass
class Report:
    """What a pass did per refund, and the pending refunds left behind (for the metrics)."""

    actions: Dict[str, int] = field(default_factory=dict)
    pending: int = 0
    oldest_pending_seconds: float = 0.0
    complete: bool = True

    def count(self, action: str) -> None:
        self.actions[action] = self.actions.get(action, 0) + 1

    def still_pending(self, count: int, since: Optional[str], now: datetime) -> None:
        self.pending += count
        if count and since:
            self.oldest_pending_seconds = max(self.oldest_pending_seconds, (now - datetime.fromisoformat(since)).total_seconds())

    def to_dict(self) -> Dict[str, object]:
        return {"actions": dict(self.actions), "pending": self.pending,
                "oldestPendingSeconds": round(self.oldest_pending_seconds), "complete": self.complete}


def settle_refund(store: SettleStore, gateway: "AlipayGateway", order: Order, out_request_no: str, refund: Refund) -> str:
    """Ask Alipay about one pending refund and settle it if Alipay's word allows; the action taken."""
    from .alipay.gateway import TRADE_NOT_EXIST, AlipayError, GatewayError  # noqa: PLC0415 - loads with a pass only

    order_num = order.order_num
    try:
        answer = gateway.trade_fastpay_refund_query(order_num, out_request_no)
        refunded, absent, gmt = answer.refunded, answer.not_found, answer.gmt_refund_pay
        if refunded and answer.refund_cents not in (None, refund.cents):
            log.error("refund_settle: %s/%s: Alipay refunded %s cents, the ledger says %s; left pending",
                      order_num, out_request_no, answer.refund_cents, refund.cents)
            return "mismatch"
    except AlipayError as exc:
        if exc.sub_code != TRADE_NOT_EXIST:
            log.warning("refund_settle: query %s/%s: %s", order_num, out_request_no, exc)
            return "error"
        refunded, absent, gmt = False, True, None
    except GatewayError as exc:
        log.warning("refund_settle: query %s/%s: %s", order_num, out_request_no, exc)
        return "error"
    if refunded:
        return _done(store, order_num, out_request_no, refund, gmt, "refunded")
    if not absent:
        log.info("refund_settle: %s/%s: Alipay says %s; still pending", order_num, out_request_no, answer.refund_status)
        return "pending"
    try:  # Alipay's doc: not found means not refunded; retry with the same out_request_no
        sent = gateway.trade_refund(order_num, refund.cents, out_request_no, refund.reason)
    except AlipayError as exc:
        if exc.sub_code in refunds.DEFINITE_REFUSALS:
            if store.fail_refund(order_num, out_request_no, refund.cents, refunds.refusal(exc))[0]:
                log.warning("refund_settle: %s/%s: Alipay has no such refund and refused it again (%s); FAILED, "
                            "%s cents refundable again", order_num, out_request_no, exc.sub_code, refund.cents)
                return "failed"
            return "already"
        log.warning("refund_settle: retry %s/%s: %s; still pending", order_num, out_request_no, exc)
        return "error"
    except GatewayError as exc:
        log.warning("refund_settle: retry %s/%s: %s; still pending", order_num, out_request_no, exc)
        return "error"
    return _done(store, order_num, out_request_no, refund, sent.gmt_refund_pay, "refunded_on_retry")


def _done(store: SettleStore, order_num: str, out_request_no: str, refund: Refund, gmt: Optional[str], action: str) -> str:
    if store.settle_refund(order_num, out_request_no, refund.cents, refunds.refunded_at(gmt))[0]:
        log.info("refund_settle: %s/%s REFUNDED (%s cents)", order_num, out_request_no, refund.cents)
        return action
    return "already"  # settled meanwhile by a refund call, a notify or another pass


def settle_order(store: SettleStore, gateway: "AlipayGateway", row: PendingRefunds, now: datetime, policy: Policy,
                 report: Report) -> None:
    """Settle the order's refunds pending past the grace time; then take it out of the index, or
    move its next look on."""
    order = store.get(row.order_num)
    pending = _pending(order)
    for out_request_no, refund in pending:
        if datetime.fromisoformat(refund.requested_at) + policy.grace > now:
            report.count("young")
            continue
        report.count(settle_refund(store, gateway, order, out_request_no, refund))
    left = _pending(store.get(row.order_num)) if pending else []
    if not left:
        store.leave_refunds_index(row.order_num)
        return
    since = min(refund.requested_at for _, refund in left)
    oldest = datetime.fromisoformat(since)
    due = min(datetime.fromisoformat(r.requested_at) + policy.grace for _, r in left)
    store.recheck_refunds(row, clock.iso(max(due, policy.next_look(now, oldest))), since)
    report.still_pending(len(left), since, now)


def _pending(order: Optional[Order]) -> List[Tuple[str, Refund]]:
    if order is None:
        return []
    return sorted(((k, r) for k, r in order.refunds.items() if r.status == REFUND_PENDING), key=lambda kr: kr[1].requested_at)


def run(store: SettleStore, gateway: "AlipayGateway", policy: Policy, *, now: Optional[datetime] = None,
        time_left: Callable[[], float] = lambda: float("inf")) -> Report:
    """One bounded pass over the refunds-pending index; orders not yet due count as pending."""
    now = clock.now() if now is None else now
    report = Report()
    rows, more = store.pending_refund_orders(policy.max_orders)
    report.complete = not more
    reserve = refund_settle_order_worst_case_seconds(gateway.timeout)
    for row in rows:
        if row.check_at > clock.iso(now) or time_left() < reserve:
            report.still_pending(row.count, row.since, now)
            continue
        settle_order(store, gateway, row, now, policy, report)
    return report
