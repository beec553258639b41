"""Reconciliation: converge unpaid orders to Alipay's truth when no notify came (seed 000, step 4).

Each pass reads unpaid orders older than ``min_age`` oldest first from the status index (never a
Scan), asks ``alipay.trade.query`` about each and feeds the answer to the same transition
function as pay_notify (``orders.apply_trade_status``). An order past its ``timeout_express``
that Alipay reports as WAIT_BUYER_PAY, or does not know (ACQ.TRADE_NOT_EXIST), is closed at
Alipay with ``alipay.trade.close`` and then locally (status 2). Should the buyer pay after all,
the paid notify still moves it to paid: Alipay's truth wins.

Work is bounded (``max_orders`` and the Lambda's remaining time); a pass that stops early
returns a cursor, and a pass given that cursor continues after it. Without one it starts at the
oldest again, which is where the orders that are still open are.
"""
from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable, Dict, List, Mapping, Optional, Protocol, Tuple

from . import clock, orderstr
from .config import ConfigError
from .gateway import TRADE_NOT_EXIST, AlipayError, AlipayGateway, GatewayError
from .orders import CLOSED_TRADE_STATUS, KNOWN_TRADE_STATUSES, WAITING_TRADE_STATUS, OrderStore, Outcome, apply_trade_status
from .repository import reconcile_order_worst_case_seconds

log = logging.getLogger(__name__)

Cursor = Dict[str, str]

MIN_AGE = "RECONCILE_MIN_AGE_SECONDS"
CLOSE_AFTER = "RECONCILE_CLOSE_AFTER_SECONDS"
MAX_ORDERS = "RECONCILE_MAX_ORDERS"
PAGE_SIZE = 50


def timeout_express(text: str) -> timedelta:
    """Alipay's relative timeout (``"30m"``, ``"2h"``, ``"15d"``) as a duration."""
    match = re.fullmatch(r"([1-9]\d*)([mhd])", text)
    if not match:
        raise ValueError(f"unsupported timeout_express {text!r}")
    return timedelta(**{{"m": "minutes", "h": "hours", "d": "days"}[match.group(2)]: int(match.group(1))})


@dataclass(frozen=True)
class Policy:
    """How far a pass looks and how much it does."""

    min_age: timedelta = timedelta(minutes=5)  # leave the notify its chance first
    close_after: timedelta = timeout_express(orderstr.DEFAULT_TIMEOUT_EXPRESS)  # the orderStr's timeout
    max_orders: int = 100

    @classmethod
    def from_env(cls, environ: Optional[Mapping[str, str]] = None) -> "Policy":
        env = os.environ if environ is None else environ
        default = cls()
        return cls(
            min_age=timedelta(seconds=_int(env, MIN_AGE, default.min_age.total_seconds(), 0)),
            close_after=timedelta(seconds=_int(env, CLOSE_AFTER, default.close_after.total_seconds(), 0)),
            max_orders=_int(env, MAX_ORDERS, default.max_orders, 1),
        )


def _int(env: Mapping[str, str], name: str, default: float, minimum: int) -> int:
    text = env.get(name, "").strip()
    if not text:
        return int(default)
    if not re.fullmatch(r"\d{1,9}", text) or int(text) < minimum:
        raise ConfigError(name, f"malformed (expected an integer >= {minimum})")
    return int(text)


class UnpaidIndex(Protocol):
    def unpaid_orders(
        self, older_than: str, limit: int, after: Optional[Cursor] = None
    ) -> Tuple[List[Tuple[str, str]], Optional[Cursor]]:
        """Unpaid ``(orderNum, orderDate)`` pairs oldest first, and the cursor after them."""


class ReconcileStore(OrderStore, UnpaidIndex, Protocol):
    pass


@dataclass
class Report:
    """What a pass did: a count per action; when it stopped early, the cursor to continue after."""

    actions: Dict[str, int] = field(default_factory=dict)
    complete: bool = False
    cursor: Optional[Cursor] = None

    def count(self, action: str) -> None:
        self.actions[action] = self.actions.get(action, 0) + 1

    def to_dict(self) -> Dict[str, object]:
        return {
            "examined": sum(self.actions.values()), "actions": dict(self.actions),
            "complete": self.complete, "cursor": self.cursor,
        }


def parse_cursor(value: object) -> Optional[Cursor]:
    """A cursor handed back by an earlier pass (``{"orderNum", "orderDate"}``), else None."""
    if value is None:
        return None
    if isinstance(value, Mapping) and all(isinstance(value.get(k), str) and value.get(k) for k in ("orderNum", "orderDate")):
        return {"orderNum": value["orderNum"], "orderDate": value["orderDate"]}
    raise ValueError("cursor must be {orderNum, orderDate} as returned by an earlier pass")


def settle(store: OrderStore, gateway: AlipayGateway, order_num: str, order_date: str, now: datetime, policy: Policy) -> str:
    """Bring one unpaid order in line with Alipay; return what was done (for the report)."""
    try:
        trade = gateway.trade_query(order_num)
        status = trade.trade_status
    except AlipayError as exc:
        if exc.sub_code != TRADE_NOT_EXIST:
            log.warning("reconcile: query %s failed: %s", order_num, exc)
            return "error"
        trade, status = None, "TRADE_NOT_EXIST"
    except GatewayError as exc:
        log.warning("reconcile: query %s failed: %s", order_num, exc)
        return "error"

    if trade is not None and status != WAITING_TRADE_STATUS:
        if status not in KNOWN_TRADE_STATUSES:
            log.error("reconcile: %s has unknown trade_status %r", order_num, status[:40])
            return "error"
        try:
            paid_at = clock.parse_alipay_time(trade.send_pay_date) if trade.send_pay_date else None
        except ValueError:
            paid_at = None
        try:
            result = apply_trade_status(store, order_num, status, trade.total_cents, trade.trade_no, paid_at)
        except ValueError as exc:  # e.g. a paid answer without total_amount or trade_no
            log.error("reconcile: %s: cannot apply %s: %s", order_num, status, exc)
            return "error"
        return _outcome(order_num, status, result.outcome)

    if now - datetime.fromisoformat(order_date) < policy.close_after:
        return "waiting"
    try:
        gateway.trade_close(order_num)
    except AlipayError as exc:
        if exc.sub_code != TRADE_NOT_EXIST:  # e.g. ACQ.TRADE_STATUS_ERROR: paid meanwhile; next pass sees it
            log.warning("reconcile: close %s refused: %s", order_num, exc)
            return "error"
    except GatewayError as exc:
        log.warning("reconcile: close %s failed: %s", order_num, exc)
        return "error"
    result = apply_trade_status(store, order_num, CLOSED_TRADE_STATUS, None)
    return _outcome(order_num, CLOSED_TRADE_STATUS, result.outcome, expired=True)


def _outcome(order_num: str, status: str, outcome: Outcome, expired: bool = False) -> str:
    if outcome is Outcome.MISMATCH:
        log.error("reconcile: Alipay's amount for %s differs from the order; not applied", order_num)
    elif outcome is Outcome.APPLIED:
        log.info("reconcile: %s -> %s%s", order_num, status, " (expired, closed at Alipay)" if expired else "")
    if outcome is not Outcome.APPLIED:
        return outcome.value
    return "closed" if status == CLOSED_TRADE_STATUS else "paid"


def run(
    store: ReconcileStore,
    gateway: AlipayGateway,
    policy: Policy,
    *,
    now: Optional[datetime] = None,
    cursor: Optional[Cursor] = None,
    time_left: Callable[[], float] = lambda: float("inf"),
) -> Report:
    """One bounded pass. ``time_left`` (seconds) stops it early: an order is taken only while its
    worst case fits (``repository.reconcile_order_worst_case_seconds``)."""
    now = clock.now() if now is None else now
    older_than = clock.iso(now - policy.min_age)
    report = Report()
    budget = policy.max_orders
    reserve = reconcile_order_worst_case_seconds(gateway.timeout)
    last = cursor
    while True:
        rows, after = store.unpaid_orders(older_than, min(PAGE_SIZE, budget), last)
        for order_num, order_date in rows:
            if budget == 0 or time_left() < reserve:
                report.cursor = last
                return report
            report.count(settle(store, gateway, order_num, order_date, now, policy))
            budget -= 1
            last = {"orderNum": order_num, "orderDate": order_date}
        if after is None:
            report.complete = True
            return report
        if budget == 0:
            report.cursor = last
            return report
