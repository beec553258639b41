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
settled or moved on, so the next pass resumes by itself. Each look is isolated: an unexpected
error in one (an answer of an odd shape, a malformed row) is logged with its order number and
pushes that order back; it never stops the pass or the passes after it.

A pass looks at up to ``concurrency`` orders at once (a bounded thread pool: the gateway call is
network time, and the conditional writes make overlapping looks safe), walking each shard of the
index in ``reconcileAt`` order. At shop scale the scheduled entry point fans the shards out to
one worker invocation each (functions/reconcile/handler.py, ``dispatch``).
"""
from __future__ import annotations

import contextvars
import heapq
import logging
import os
import re
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Protocol, Sequence, Set, Tuple

from .domain import clock
from .alipay import orderstr
from .environment import ConfigError, int_setting
from .domain.orders import (
    CLOSED, CLOSED_TRADE_STATUS, KNOWN_TRADE_STATUSES, RECONCILE_SHARDS, UNPAID, WAITING_TRADE_STATUS, Due, OrderStore,
    Outcome, Recheck, apply_trade_status,
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
CONCURRENCY = "RECONCILE_CONCURRENCY"
MAX_CONCURRENCY = 32  # the DynamoDB client's connection pool is sized for it (shared/aws/repository.py)
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
    max_orders: int = 5000  # per pass (per shard worker when fanned out); the remaining time bounds it first
    concurrency: int = 8  # looks in flight at once: 8 x ~100 ms gateway calls = ~70 orders/s
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
            concurrency=int_setting(env, CONCURRENCY, default.concurrency, minimum=1),
        )
        if policy.concurrency > MAX_CONCURRENCY:
            raise ConfigError(CONCURRENCY, f"at most {MAX_CONCURRENCY} (the DynamoDB client's connection pool)")
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

    def due_page(self, shard: int, now: str, limit: int, start: Optional[object] = None) -> Tuple[List[Due], Optional[object]]:
        """One page of a shard's due orders, earliest first, from ``start``; and where the next begins (None: the end)."""

    def reschedule(self, due: Due, recheck: Optional[Recheck]) -> bool:
        """Move an unsettled order to ``recheck.at`` (or, None, out of the index) unless it changed."""


class ReconcileStore(OrderStore, DueIndex, Protocol):
    pass


ERROR = "error"  # a look that settled nothing for want of an answer, or for an unexpected error


@dataclass
class Report:
    """What a pass did: a count per action; ``errors``, the looks that ended in an error (the
    order pushed back); ``complete`` when no more orders were due."""

    actions: Dict[str, int] = field(default_factory=dict)
    complete: bool = False

    def count(self, action: str) -> None:
        self.actions[action] = self.actions.get(action, 0) + 1

    @property
    def errors(self) -> int:
        return self.actions.get(ERROR, 0)

    def to_dict(self) -> Dict[str, object]:
        return {"examined": sum(self.actions.values()), "actions": dict(self.actions), "errors": self.errors,
                "complete": self.complete}


def look(store: ReconcileStore, gateway: AlipayGateway, due: Due, now: datetime, policy: Policy) -> str:
    """``settle``, isolated: any unexpected error is this order's alone. It is logged (with its
    traceback and order number), the order is pushed back with the usual backoff, and the pass goes on."""
    try:
        return settle(store, gateway, due, now, policy)
    except Exception:  # noqa: BLE001 - one order's surprise must not stop every later pass
        log.exception("reconcile: %s: unexpected error in its look; pushed back", due.order_num)
        try:  # the plain backoff: the window (from orderDate) may be what is malformed
            store.reschedule(due, Recheck(clock.iso(now + policy.delay(due.tries + 1)), due.tries + 1))
        except Exception:  # noqa: BLE001 - still due: the next pass looks again
            log.exception("reconcile: %s: could not push it back", due.order_num)
        return ERROR


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
            return _later(store, due, now, policy, ERROR)
        trade, status = None, "TRADE_NOT_EXIST"
    except GatewayError as exc:
        log.warning("reconcile: query %s failed: %s", order_num, exc)
        return _later(store, due, now, policy, ERROR)

    if trade is not None and status != WAITING_TRADE_STATUS:
        if status not in KNOWN_TRADE_STATUSES:
            log.error("reconcile: %s has unknown trade_status %r", order_num, status[:40])
            return _later(store, due, now, policy, ERROR)
        paid_at = _send_pay_date(trade)
        try:
            result = apply_trade_status(store, order_num, status, trade.total_cents, trade.trade_no, paid_at)
        except ValueError as exc:  # e.g. a paid answer without total_amount or trade_no
            log.error("reconcile: %s: cannot apply %s: %s", order_num, status, exc)
            return _later(store, due, now, policy, ERROR)
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
            return _later(store, due, now, policy, ERROR)
        if due.status != UNPAID:
            return _later(store, due, now, policy, "waiting")
        # Alipay knows no trade: closed here only, and looked at again until its window ends.
        local, recheck = True, _next_look(replace(due, status=CLOSED), now, policy)  # a closed order's window
    except GatewayError as exc:
        log.warning("reconcile: close %s failed: %s", order_num, exc)
        return _later(store, due, now, policy, ERROR)
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
    shards: Optional[Sequence[int]] = None,
) -> Report:
    """One bounded pass over ``shards`` (default all), up to ``policy.concurrency`` looks at once.

    ``time_left`` (seconds) stops it early: a look is started only while its worst case fits
    (``budgets.reconcile_order_worst_case_seconds``), and it starts at once (never queued behind
    others), so every look started ends before the Lambda's time does."""
    now = clock.now() if now is None else now
    report = Report()
    reserve = reconcile_order_worst_case_seconds(gateway.timeout)
    feed = due_feed(store, clock.iso(now), range(RECONCILE_SHARDS) if shards is None else shards,
                    page=min(policy.max_orders, 100))
    taken, stopped = 0, False
    in_flight: Set[Future] = set()

    def collect(done: Iterable[Future]) -> None:
        for future in done:
            in_flight.discard(future)
            report.count(future.result())  # ``look`` never raises

    with ThreadPoolExecutor(max_workers=policy.concurrency, thread_name_prefix="reconcile") as pool:
        for due in feed:
            if taken >= policy.max_orders:
                stopped = True  # at least one more is due
                break
            if len(in_flight) >= policy.concurrency:
                collect(wait(in_flight, return_when=FIRST_COMPLETED).done)
            if time_left() < reserve:
                stopped = True
                break
            # each look in the pass's log context (the invocation's request id), as if inline
            in_flight.add(pool.submit(contextvars.copy_context().run, look, store, gateway, due, now, policy))
            taken += 1
        collect(wait(in_flight).done)
    report.complete = not stopped
    return report


def due_feed(store: DueIndex, now: str, shards: Iterable[int], page: int) -> Iterator[Due]:
    """The due orders of ``shards``, earliest first, read a page at a time as the pass needs them.

    Each shard is walked with its own cursor (``LastEvaluatedKey``): a look moves its order past
    ``now`` or out of the index, so nothing is met twice and an order still in flight is not
    re-read (re-querying from the top would meet it again)."""
    def shard_feed(shard: int) -> Iterator[Due]:
        start: Optional[object] = None
        while True:
            rows, start = store.due_page(shard, now, page, start)
            yield from rows
            if start is None:
                return

    return heapq.merge(*(shard_feed(shard) for shard in shards), key=lambda due: (due.reconcile_at, due.order_num))


# --- at shop scale: the scheduled entry point fans the shards out, one worker each ---------------

WORKER_FUNCTION = "RECONCILE_WORKER_FUNCTION"  # serverless.yml: the reconcile_worker function's name


def shards_of(event: object) -> List[int]:
    """The shards a worker event names: ``{"shard": n}``, or every shard (``{}``, a schedule's event)."""
    shard = event.get("shard") if isinstance(event, dict) else None
    if shard is None:
        return list(range(RECONCILE_SHARDS))
    if isinstance(shard, bool) or not isinstance(shard, int) or not 0 <= shard < RECONCILE_SHARDS:
        raise ValueError(f"shard must be an integer in [0, {RECONCILE_SHARDS})")
    return [shard]


@dataclass
class Dispatch:
    """What the scheduled entry point did: how late the most overdue look is (the alarm's
    ``ReconcileOldestDueAge``), which shards got a worker, and which could not be invoked."""

    oldest_due_age: float
    shards: List[int]
    failed: List[int] = field(default_factory=list)

    def to_dict(self) -> Dict[str, object]:
        return {"oldestDueAgeSeconds": round(self.oldest_due_age, 3), "dispatched": self.shards, "failed": self.failed}


def oldest_due(store: DueIndex, now: datetime) -> Tuple[float, List[int]]:
    """Seconds since the earliest ``reconcileAt`` that has come (0 when nothing is due), and the
    shards with an order due: one one-item Query per shard."""
    oldest: Optional[datetime] = None
    busy: List[int] = []
    for shard in range(RECONCILE_SHARDS):
        rows, _ = store.due_page(shard, clock.iso(now), 1)
        if rows:
            busy.append(shard)
            at = datetime.fromisoformat(rows[0].reconcile_at)
            oldest = at if oldest is None or at < oldest else oldest
    return (max(0.0, (now - oldest).total_seconds()) if oldest else 0.0), busy


def dispatch(store: DueIndex, invoke: Callable[[Dict[str, int]], None], *, now: Optional[datetime] = None) -> Dispatch:
    """One worker invocation per shard with orders due (``invoke`` queues it: Lambda's asynchronous
    Invoke); each worker is one bounded pass over its shard within its own Lambda timeout. A shard
    that could not be dispatched is logged and reported; the others still go."""
    now = clock.now() if now is None else now
    age, busy = oldest_due(store, now)
    result = Dispatch(age, [])
    for shard in busy:
        try:
            invoke({"shard": shard})
            result.shards.append(shard)
        except Exception:  # noqa: BLE001 - one shard's failed invoke must not starve the others
            log.exception("reconcile: could not dispatch shard %d", shard)
            result.failed.append(shard)
    emit_dispatch_metrics(result)
    return result


def emit_dispatch_metrics(result: Dispatch) -> None:
    from .aws import metrics  # noqa: PLC0415 - only the scheduled functions emit

    metrics.emit({"ReconcileOldestDueAge": (result.oldest_due_age, "Seconds")},
                 properties={"dispatched": result.shards, "failed": result.failed})


def emit_pass_metrics(report: Report, shards: Sequence[int]) -> None:
    """One EMF line per pass: examined, settled (made paid, or paid and refunded at Alipay), closed
    (at Alipay or here), errors."""
    from .aws import metrics  # noqa: PLC0415

    actions = report.actions
    metrics.emit(
        {"ReconcileExamined": sum(actions.values()), "ReconcileSettled": actions.get("paid", 0) + actions.get("paid_refunded", 0),
         "ReconcileClosed": actions.get("closed", 0) + actions.get("closed_here", 0), "ReconcileErrors": report.errors},
        dimensions={"Shard": str(shards[0]) if len(shards) == 1 else "all"},
        properties={"complete": report.complete},
    )


def time_left_of(context: object) -> Callable[[], float]:
    """Seconds the invocation has left (Lambda's context), or no limit when invoked bare."""
    if context is None:
        return lambda: float("inf")
    return lambda: context.get_remaining_time_in_millis() / 1000  # type: ignore[attr-defined]


def configured_pass(shards: Sequence[int], time_left: Callable[[], float]) -> Report:
    """One pass over ``shards`` with the function's own settings (the worker's, or the scheduled
    function's when no worker is configured), its metrics emitted."""
    from .alipay.gateway import AlipayGateway  # noqa: PLC0415 - see TYPE_CHECKING above
    from .aws.repository import order_repository  # noqa: PLC0415
    from .config import settings  # noqa: PLC0415

    cfg = settings().require("app_id", "app_private_key", "alipay_public_key", "order_table", "gateway_url")
    report = run(order_repository(cfg.order_table), AlipayGateway.from_settings(cfg), Policy.from_env(),
                 time_left=time_left, shards=shards)
    emit_pass_metrics(report, shards)
    log.info("reconcile pass: %s", report.to_dict(), extra={"shards": list(shards)})
    return report
