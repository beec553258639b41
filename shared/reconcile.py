"""Reconciliation: converge orders to Alipay's truth when no notify came (seed 000, step 4).

Every order that may still change at Alipay carries ``reconcileAt``, the time to look at it
next, and sits in the sparse ``reconcile-due`` index until a write settles it. A pass reads the
orders whose time has come, earliest first (one Query per shard, never a Scan), asks
``alipay.trade.query`` about each and feeds the answer to the same transition function as
pay_notify (``orders.apply_trade_status``), whose write takes a settled order out of the index.
An inconclusive look (WAIT_BUYER_PAY before the timeout, an amount that differs, no answer)
pushes the order back with exponential backoff, so stuck orders step aside for newer ones.

Past its ``timeout_express`` an order Alipay reports as WAIT_BUYER_PAY is closed at Alipay
(``alipay.trade.close``) and then here: final. One Alipay does not know (ACQ.TRADE_NOT_EXIST)
is closed here only: the app may still hold its orderStr, and a buyer who pays later creates the
trade then. So it stays in the index for a window after the timeout, looked at with backoff,
and a late payment whose notify was lost is still found. Nothing is looked at beyond 15 days
(Alipay's longest timeout_express): a pass takes such an order out of the index and logs it.

Work is bounded (``max_orders`` and the Lambda's remaining time); every order a pass looks at is
settled or moved on, so the next pass resumes by itself.
"""
from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Callable, Dict, List, Mapping, Optional, Protocol, Tuple

from .domain import clock
from .alipay import orderstr
from .environment import ConfigError, int_setting
from .domain.orders import (
    CLOSED, CLOSED_TRADE_STATUS, KNOWN_TRADE_STATUSES, UNPAID, WAITING_TRADE_STATUS, Due, OrderStore, Outcome, Recheck,
    apply_trade_status,
)
from .budgets import reconcile_order_worst_case_seconds

if TYPE_CHECKING:  # the gateway (http.client, ssl) loads when a pass runs, not on pay's path
    from .alipay.gateway import AlipayGateway

log = logging.getLogger(__name__)

MIN_AGE = "RECONCILE_MIN_AGE_SECONDS"
CLOSE_AFTER = "RECONCILE_CLOSE_AFTER_SECONDS"
MAX_ORDERS = "RECONCILE_MAX_ORDERS"
BACKOFF = "RECONCILE_BACKOFF_SECONDS"
BACKOFF_MAX = "RECONCILE_BACKOFF_MAX_SECONDS"
LATE_PAY_WINDOW = "RECONCILE_LATE_PAY_WINDOW_SECONDS"
MAX_WINDOW = timedelta(days=15)  # Alipay's longest timeout_express: no trade changes after it


def timeout_express(text: str) -> timedelta:
    """Alipay's relative timeout (``"30m"``, ``"2h"``, ``"15d"``) as a duration."""
    match = re.fullmatch(r"([1-9]\d*)([mhd])", text)
    if not match:
        raise ValueError(f"unsupported timeout_express {text!r}")
    return timedelta(**{{"m": "minutes", "h": "hours", "d": "days"}[match.group(2)]: int(match.group(1))})


@dataclass(frozen=True)
class Policy:
    """How far a pass looks, how much it does, and how often an unsettled order is looked at."""

    min_age: timedelta = timedelta(minutes=5)  # first look after creation: leave the notify its chance
    close_after: timedelta = timeout_express(orderstr.DEFAULT_TIMEOUT_EXPRESS)  # the orderStr's timeout
    max_orders: int = 100
    backoff: timedelta = timedelta(minutes=1)  # after the n-th inconclusive look: backoff * 2 ** (n - 1)
    backoff_max: timedelta = timedelta(hours=1)
    late_pay_window: timedelta = timedelta(hours=24)  # after the timeout, for orders closed here only

    @classmethod
    def from_env(cls, environ: Optional[Mapping[str, str]] = None) -> "Policy":
        env = os.environ if environ is None else environ
        default = cls()

        def seconds(name: str, value: timedelta, minimum: int = 0) -> timedelta:
            return timedelta(seconds=int_setting(env, name, int(value.total_seconds()), minimum=minimum))

        policy = cls(
            min_age=seconds(MIN_AGE, default.min_age),
            close_after=seconds(CLOSE_AFTER, default.close_after),
            max_orders=int_setting(env, MAX_ORDERS, default.max_orders, minimum=1),
            backoff=seconds(BACKOFF, default.backoff, 1),
            backoff_max=seconds(BACKOFF_MAX, default.backoff_max, 1),
            late_pay_window=seconds(LATE_PAY_WINDOW, default.late_pay_window),
        )
        for name, value in ((CLOSE_AFTER, policy.close_after), (LATE_PAY_WINDOW, policy.late_pay_window)):
            if value > MAX_WINDOW:
                raise ConfigError(name, "too large (Alipay's longest timeout is 15 days)")
        return policy

    def delay(self, looks: int) -> timedelta:
        """The wait after the ``looks``-th inconclusive look: 1m, 2m, 4m … capped."""
        return min(self.backoff * 2 ** min(looks - 1, 32), self.backoff_max)

    def window_end(self, due: Due) -> datetime:
        """When looking at this order stops: for an unpaid order Alipay's 15 days; for one closed
        here only, ``late_pay_window`` after its timeout (never beyond the 15 days either)."""
        created = datetime.fromisoformat(due.order_date)
        if due.status == UNPAID:
            return created + MAX_WINDOW
        return created + min(self.close_after + self.late_pay_window, MAX_WINDOW)


def first_look(order_date: datetime, environ: Optional[Mapping[str, str]] = None) -> str:
    """``reconcileAt`` of a new order: ``RECONCILE_MIN_AGE_SECONDS`` after its creation."""
    env = os.environ if environ is None else environ
    return clock.iso(order_date + timedelta(seconds=int_setting(env, MIN_AGE, int(Policy.min_age.total_seconds()))))


class DueIndex(Protocol):
    def due_orders(self, now: str, limit: int) -> Tuple[List[Due], bool]:
        """Up to ``limit`` orders with reconcileAt <= ``now``, earliest first; and whether more may be due."""

    def reschedule(self, due: Due, recheck: Optional[Recheck]) -> bool:
        """Move an unsettled order to ``recheck.at`` (or, None, out of the index) unless it changed."""


class ReconcileStore(OrderStore, DueIndex, Protocol):
    pass


@dataclass
class Report:
    """What a pass did: a count per action; ``complete`` when no more orders were due."""

    actions: Dict[str, int] = field(default_factory=dict)
    complete: bool = False

    def count(self, action: str) -> None:
        self.actions[action] = self.actions.get(action, 0) + 1

    def to_dict(self) -> Dict[str, object]:
        return {"examined": sum(self.actions.values()), "actions": dict(self.actions), "complete": self.complete}


def settle(store: ReconcileStore, gateway: AlipayGateway, due: Due, now: datetime, policy: Policy) -> str:
    """Bring one due order in line with Alipay, or move it on; return what was done (for the report)."""
    from .alipay.gateway import TRADE_NOT_EXIST, AlipayError, GatewayError  # noqa: PLC0415 - see TYPE_CHECKING above

    order_num = due.order_num
    try:
        trade = gateway.trade_query(order_num)
        status = trade.trade_status
    except AlipayError as exc:
        if exc.sub_code != TRADE_NOT_EXIST:
            log.warning("reconcile: query %s failed: %s", order_num, exc)
            return _later(store, due, now, policy, "error")
        trade, status = None, "TRADE_NOT_EXIST"
    except GatewayError as exc:
        log.warning("reconcile: query %s failed: %s", order_num, exc)
        return _later(store, due, now, policy, "error")

    if trade is not None and status != WAITING_TRADE_STATUS:
        if status not in KNOWN_TRADE_STATUSES:
            log.error("reconcile: %s has unknown trade_status %r", order_num, status[:40])
            return _later(store, due, now, policy, "error")
        paid_at = _send_pay_date(trade)
        try:
            result = apply_trade_status(store, order_num, status, trade.total_cents, trade.trade_no, paid_at)
        except ValueError as exc:  # e.g. a paid answer without total_amount or trade_no
            log.error("reconcile: %s: cannot apply %s: %s", order_num, status, exc)
            return _later(store, due, now, policy, "error")
        if result.outcome is Outcome.MISMATCH:
            log.error("reconcile: Alipay's amount for %s differs from the order; not applied", order_num)
            return _later(store, due, now, policy, "mismatch")
        if status == CLOSED_TRADE_STATUS and paid_at is not None and result.outcome is Outcome.APPLIED:
            return "paid_refunded"  # closed after a payment: refunded in full at Alipay
        return _outcome(order_num, status, result.outcome)

    expires = datetime.fromisoformat(due.order_date) + policy.close_after
    if due.status == UNPAID and now < expires:
        return _later(store, due, now, policy, "waiting", not_after=expires)
    if due.status != UNPAID and trade is None:  # closed here, still no trade: look again later
        return _later(store, due, now, policy, "waiting")
    return _close(store, gateway, due, now, policy)


def _send_pay_date(trade) -> Optional[datetime]:
    """When Alipay paid the seller (``send_pay_date``). Only a paid trade has one, so on a
    TRADE_CLOSED answer it is the proof of "paid, then refunded in full" (Alipay's trade_status:
    "未付款交易超时关闭，或支付完成后全额退款"); one Alipay wrote otherwise still proves it (now)."""
    if not trade.send_pay_date:
        return None
    try:
        return clock.parse_alipay_time(trade.send_pay_date)
    except (TypeError, ValueError):
        log.warning("reconcile: %s: unreadable send_pay_date %r", trade.out_trade_no, str(trade.send_pay_date)[:32])
        return clock.now()


def _close(store: ReconcileStore, gateway: AlipayGateway, due: Due, now: datetime, policy: Policy) -> str:
    """Expired (unpaid), or closed here and the buyer opened the orderStr since: close it at Alipay,
    then here; if Alipay knows no trade, here only, and the order stays in the index."""
    from .alipay.gateway import TRADE_NOT_EXIST, AlipayError, GatewayError  # noqa: PLC0415 - see TYPE_CHECKING above

    order_num = due.order_num
    local, recheck = False, None
    try:
        gateway.trade_close(order_num)
    except AlipayError as exc:
        if exc.sub_code != TRADE_NOT_EXIST:  # e.g. ACQ.TRADE_STATUS_ERROR: paid meanwhile; next look sees it
            log.warning("reconcile: close %s refused: %s", order_num, exc)
            return _later(store, due, now, policy, "error")
        if due.status != UNPAID:
            return _later(store, due, now, policy, "waiting")
        # Alipay knows no trade: closed here only, and looked at again until its window ends.
        local, recheck = True, _next_look(replace(due, status=CLOSED), now, policy)  # a closed order's window
    except GatewayError as exc:
        log.warning("reconcile: close %s failed: %s", order_num, exc)
        return _later(store, due, now, policy, "error")
    outcome = apply_trade_status(store, order_num, CLOSED_TRADE_STATUS, None, recheck=recheck).outcome
    if outcome is Outcome.APPLIED or (outcome is Outcome.ALREADY and not local):
        how = "closed at Alipay" if not local else "Alipay knows no trade; closed here, " + (
            f"next look {recheck.at}" if recheck else "its window is over")
        log.info("reconcile: %s -> %s (expired, %s)", order_num, CLOSED_TRADE_STATUS, how)
    return _outcome(order_num, CLOSED_TRADE_STATUS, outcome, log_applied=False, local=local)


def _next_look(due: Due, now: datetime, policy: Policy, not_after: Optional[datetime] = None) -> Optional[Recheck]:
    """The order's next look after this inconclusive one, or None when its window is over."""
    end = policy.window_end(due)
    if now >= end:
        return None
    at = min(now + policy.delay(due.tries + 1), end, not_after or end)
    return Recheck(clock.iso(at), due.tries + 1)


def _later(store: ReconcileStore, due: Due, now: datetime, policy: Policy, action: str,
          not_after: Optional[datetime] = None) -> str:
    """Move an order this look could not settle to its next look, or out of the index when its
    window is over (then the action reads ``retired``)."""
    recheck = _next_look(due, now, policy, not_after)
    store.reschedule(due, recheck)
    if recheck is not None:
        return action
    if due.status == UNPAID:
        log.error("reconcile: %s still unsettled (%s) after 15 days; no longer looked at", due.order_num, action)
    else:
        log.info("reconcile: %s closed here and no payment within its window; no longer looked at", due.order_num)
    return "retired"


def _outcome(order_num: str, status: str, outcome: Outcome, log_applied: bool = True, local: bool = False) -> str:
    if outcome is Outcome.APPLIED and log_applied:
        log.info("reconcile: %s -> %s", order_num, status)
    if status == CLOSED_TRADE_STATUS and outcome in (Outcome.APPLIED, Outcome.ALREADY):
        return "closed_here" if local else "closed"
    if outcome is not Outcome.APPLIED:
        return outcome.value
    return "paid"


def run(
    store: ReconcileStore,
    gateway: AlipayGateway,
    policy: Policy,
    *,
    now: Optional[datetime] = None,
    time_left: Callable[[], float] = lambda: float("inf"),
) -> Report:
    """One bounded pass. ``time_left`` (seconds) stops it early: an order is taken only while its
    worst case fits (``budgets.reconcile_order_worst_case_seconds``)."""
    now = clock.now() if now is None else now
    report = Report()
    due, more = store.due_orders(clock.iso(now), policy.max_orders)
    reserve = reconcile_order_worst_case_seconds(gateway.timeout)
    for order in due:
        if time_left() < reserve:
            return report
        report.count(settle(store, gateway, order, now, policy))
    report.complete = not more
    return report
