"""The Order and its state machine (seed 004's numbers), free of AWS so it tests in isolation.

One transition function, ``apply_trade_status``, turns an Alipay ``trade_status`` into a
conditional write on an ``OrderStore``; pay_notify uses it, and so will reconcile. The store
does the writes atomically (DynamoDB conditions); this module decides what they mean.
"""
from __future__ import annotations

import enum
import logging
import random
import secrets
import string
import zlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Dict, Mapping, Optional, Protocol, Tuple

from . import clock

log = logging.getLogger(__name__)

UNPAID, PAID, CLOSED = 0, 1, 2
PLAY_TYPE_ALIPAY = 0

PAID_TRADE_STATUSES = frozenset({"TRADE_SUCCESS", "TRADE_FINISHED"})
CLOSED_TRADE_STATUS = "TRADE_CLOSED"
WAITING_TRADE_STATUS = "WAIT_BUYER_PAY"
KNOWN_TRADE_STATUSES = PAID_TRADE_STATUSES | {CLOSED_TRADE_STATUS, WAITING_TRADE_STATUS}

_ALPHABET = string.ascii_lowercase + string.digits
_SYSTEM_RANDOM = random.SystemRandom()  # os.urandom, as secrets.choice uses (without secrets' hmac import)
_RANDOM_LEN = 12  # 36**12 ≈ 4.7e18 per millisecond; the conditional put catches the rest


def new_out_trade_no(at: Optional[datetime] = None) -> str:
    """``ORDER_<epoch ms>_<random>``: ≤ 64 chars of [A-Za-z0-9_], unguessable, unique in practice.

    Uniqueness is enforced, not assumed: the Order row is created with a conditional put and a
    collision makes the caller draw a new number.
    """
    suffix = "".join(_SYSTEM_RANDOM.choice(_ALPHABET) for _ in range(_RANDOM_LEN))
    return f"ORDER_{clock.epoch_ms(at)}_{suffix}"


# --- the reconcile index (serverless.yml's sparse GSI "reconcile-due") ----------------------------
# An order is in the index exactly while its row carries reconcileShard and reconcileAt: set on
# create, pushed back after each inconclusive check, REMOVEd by the write that settles it.
RECONCILE_SHARDS = 8  # partition-key values of the index; readers and writers must agree: a constant


def reconcile_shard(order_num: str) -> int:
    """The index partition an order lands in: stable (crc32, not Python's salted ``hash``)."""
    return zlib.crc32(order_num.encode("utf-8")) % RECONCILE_SHARDS


@dataclass(frozen=True)
class Recheck:
    """When reconcile looks at an order next (``reconcileAt``) and how many looks it had so far."""

    at: str
    tries: int


@dataclass(frozen=True)
class Due:
    """An order whose ``reconcileAt`` has come, as the index projects it."""

    order_num: str
    reconcile_at: str
    status: int
    order_date: str
    tries: int = 0


@dataclass(frozen=True)
class PendingRefunds:
    """An order with refunds still PENDING, as the refunds-pending index projects it."""

    order_num: str
    check_at: str  # when refund_settle asks Alipay next
    count: int  # pendingRefunds
    since: Optional[str]  # requestedAt of the oldest pending refund (as last written)


REFUND_PENDING = "PENDING"  # cents reserved; Alipay's answer not yet known
REFUND_DONE = "REFUNDED"  # Alipay confirmed the refund
REFUND_FAILED = "FAILED"  # Alipay has no such refund and refused its retry: the cents were given back
MAX_REFUNDS = 50  # ours, per order: keeps the item far below DynamoDB's 400 KB
MADE_AT_ALIPAY = "alipay"  # a refund's ``origin`` when it was made outside this backend (console, another system)


@dataclass(frozen=True)
class Refund:
    """One refund of an order, keyed in the order by its ``out_request_no``."""

    cents: int
    status: str
    requested_at: str
    refunded_at: Optional[str] = None
    reason: Optional[str] = None
    # Random per write that records it: a retried write that had landed finds its own token there.
    attempt: Optional[str] = None
    origin: Optional[str] = None  # MADE_AT_ALIPAY for a refund this backend did not ask for

    def to_dict(self) -> Dict[str, Any]:
        item: Dict[str, Any] = {"amount": self.cents, "status": self.status, "requestedAt": self.requested_at}
        for key, value in (
            ("refundedAt", self.refunded_at), ("reason", self.reason), ("attempt", self.attempt), ("origin", self.origin),
        ):
            if value is not None:
                item[key] = value
        return item

    @classmethod
    def from_dict(cls, item: Mapping[str, Any]) -> "Refund":
        return cls(
            int(item["amount"]), item["status"], item["requestedAt"], item.get("refundedAt"), item.get("reason"),
            item.get("attempt"), item.get("origin"),
        )


@dataclass(frozen=True)
class AlipayRefund:
    """Alipay's word on a trade's refunds: ``refund_fee`` is the trade's cumulative refunded amount
    (what a refund notify and ``alipay.trade.refund`` report), ``out_biz_no`` the refund it was sent
    for — our ``outRequestNo`` when the refund is ours — and ``refunded_at`` (ISO) when. A report
    of one refund (the daily bill's refund line) gives its ``cents`` instead of, or beside, the total."""

    refund_fee: Optional[int]
    out_biz_no: Optional[str]
    refunded_at: str
    cents: Optional[int] = None  # this refund's own amount, where the report names it (a bill's refund line)

    def key(self) -> str:
        """The refunds-map key: ``out_biz_no``, or one made from the time when Alipay gave none."""
        return self.out_biz_no or "ALIPAY_" + "".join(ch for ch in self.refunded_at[:19] if ch.isdigit())


@dataclass(frozen=True)
class Order:
    """One row of the Order table. ``order_num`` is Alipay's out_trade_no."""

    order_num: str
    product_id: str
    user_id: str
    order_name: str
    total_cents: int
    status: int = UNPAID
    play_type: int = PLAY_TYPE_ALIPAY
    order_date: str = field(default_factory=clock.iso)
    pay_date: Optional[str] = None
    trade_no: Optional[str] = None
    body: Optional[str] = None
    refunded_cents: int = 0  # cents of refunds done or in flight; never above total_cents
    refunds: Mapping[str, Refund] = field(default_factory=dict)
    reconcile_at: Optional[str] = None  # when reconcile looks next; None: not in the reconcile index
    reconcile_tries: int = 0  # inconclusive looks so far (the backoff's exponent)

    def to_dict(self) -> Dict[str, Any]:
        """The item as stored, with seed 004's attribute names (totalAmount in cents)."""
        item: Dict[str, Any] = {
            "orderNum": self.order_num,
            "productId": self.product_id,
            "userId": self.user_id,
            "orderName": self.order_name,
            "totalAmount": self.total_cents,
            "status": self.status,
            "playType": self.play_type,
            "orderDate": self.order_date,
        }
        for key, value in (("payDate", self.pay_date), ("tradeNo", self.trade_no), ("body", self.body)):
            if value is not None:
                item[key] = value
        if self.refunds:
            item["refundedAmount"] = self.refunded_cents
            item["refunds"] = {key: refund.to_dict() for key, refund in self.refunds.items()}
        if self.reconcile_at is not None:
            item["reconcileShard"] = reconcile_shard(self.order_num)
            item["reconcileAt"] = self.reconcile_at
            if self.reconcile_tries:
                item["reconcileTries"] = self.reconcile_tries
        return item

    @classmethod
    def from_dict(cls, item: Dict[str, Any]) -> "Order":
        return cls(
            order_num=item["orderNum"],
            product_id=item["productId"],
            user_id=item["userId"],
            order_name=item["orderName"],
            total_cents=int(item["totalAmount"]),
            status=int(item["status"]),
            play_type=int(item.get("playType", PLAY_TYPE_ALIPAY)),
            order_date=item["orderDate"],
            pay_date=item.get("payDate"),
            trade_no=item.get("tradeNo"),
            body=item.get("body"),
            refunded_cents=int(item.get("refundedAmount", 0)),
            refunds={key: Refund.from_dict(value) for key, value in item.get("refunds", {}).items()},
            reconcile_at=item.get("reconcileAt"),
            reconcile_tries=int(item.get("reconcileTries", 0)),
        )


class OrderExists(Exception):
    """An order with this orderNum is already stored; it was not overwritten."""


class Outcome(enum.Enum):
    APPLIED = "applied"  # this call made the transition
    ALREADY = "already"  # the order already holds the target state (a duplicate): fine
    KEPT = "kept"  # the event asks for no change (WAIT_BUYER_PAY, or CLOSED after paid)
    MISMATCH = "mismatch"  # the amount differs from the stored order: never applied
    NOT_FOUND = "not_found"  # no such order

    @property
    def handled(self) -> bool:
        """Whether Alipay may stop retrying (``success``) or must try again (``fail``)."""
        return self in (Outcome.APPLIED, Outcome.ALREADY, Outcome.KEPT)


@dataclass(frozen=True)
class Transition:
    outcome: Outcome
    before: Optional[Order]  # the stored order before the write (None when not found)


class OrderStore(Protocol):
    """Storage behind the state machine. Each method is one atomic, conditional operation."""

    def create(self, order: Order) -> None:
        """Insert, never overwrite: raise ``OrderExists`` when orderNum is taken."""

    def get(self, order_num: str) -> Optional[Order]:
        """A strongly consistent read."""

    def mark_paid(self, order_num: str, cents: int, trade_no: str, pay_date: str) -> Transition:
        """status := 1 if status in (0, 2) and totalAmount == cents; the order leaves the reconcile index."""

    def mark_closed(self, order_num: str, cents: Optional[int], recheck: Optional[Recheck] = None) -> Transition:
        """status := 2 if status == 0 (and totalAmount == cents when given).

        Without ``recheck`` the close is Alipay's (final): the order leaves the reconcile index,
        also when it was closed here before and still in it. With ``recheck`` the close is ours
        only (Alipay knew no trade): the order stays in the index, due at ``recheck.at``.
        """

    def mark_paid_refunded(
        self, order_num: str, cents: int, trade_no: str, pay_date: str, out_request_no: str, refund: Refund
    ) -> Transition:
        """``mark_paid`` and, in the same write, ``refunds = {out_request_no: refund}`` with
        refundedAmount = its cents: a trade Alipay reports paid and then refunded."""

    def add_refund(self, order_num: str, total_cents: int, out_request_no: str, refund: Refund) -> Tuple[bool, Optional[Order]]:
        """Record ``refund`` on a paid order if its cents still fit and ``out_request_no`` is free."""

    def settle_refund(self, order_num: str, out_request_no: str, cents: int, refunded_at: str) -> Tuple[bool, Optional[Order]]:
        """Mark a PENDING refund of ``cents`` REFUNDED."""


def judge(before: Optional[Order], target: int, cents: Optional[int]) -> Outcome:
    """What a failed conditional write means, given the item as it was (ALL_OLD)."""
    if before is None:
        return Outcome.NOT_FOUND
    if cents is not None and before.total_cents != cents:
        return Outcome.MISMATCH
    if before.status == target:
        return Outcome.ALREADY
    if target == CLOSED and before.status == PAID:
        return Outcome.KEPT  # never downgrade a paid order; a full refund is not "unpaid"
    raise AssertionError(f"condition failed for {target=} with status {before.status}")  # pragma: no cover


def apply_trade_status(
    store: OrderStore,
    order_num: str,
    trade_status: str,
    cents: Optional[int],
    trade_no: Optional[str] = None,
    paid_at: Optional[datetime] = None,
    recheck: Optional[Recheck] = None,
    refund: Optional[AlipayRefund] = None,
) -> Transition:
    """Move the order as Alipay's trade_status says (../shared/design.md, "Order status").

    TRADE_SUCCESS / TRADE_FINISHED -> paid, from unpaid or closed; TRADE_CLOSED -> closed, only
    from unpaid; WAIT_BUYER_PAY -> no change. The amount must equal the stored one. ``recheck``
    marks a close that is ours only (reconcile, when Alipay knows no trade): see ``mark_closed``.

    A TRADE_CLOSED that proves a payment — ``paid_at`` (a notify's gmt_payment, a query's
    send_pay_date) or a ``refund`` (refund_fee) — is Alipay's "paid, then refunded in full": the
    order becomes paid and refunded at Alipay, never closed. A ``refund`` on a paid status (a
    partial refund made at Alipay) is recorded too (``apply_alipay_refund``).
    """
    if trade_status in PAID_TRADE_STATUSES:
        if cents is None or not trade_no:
            raise ValueError("a paid transition needs the amount and Alipay's trade_no")
        result = store.mark_paid(order_num, cents, trade_no, clock.iso(paid_at))
        if result.outcome is Outcome.APPLIED and result.before and result.before.status == CLOSED:
            log.error("order %s was closed but Alipay reports it paid; marked paid", order_num)
        if refund is not None and result.outcome in (Outcome.APPLIED, Outcome.ALREADY):
            if apply_alipay_refund(store, order_num, refund).outcome is Outcome.APPLIED:
                result = Transition(Outcome.APPLIED, result.before)
        return result
    if trade_status == CLOSED_TRADE_STATUS:
        if paid_at is not None or refund is not None:
            return _paid_then_refunded(store, order_num, cents, trade_no, paid_at, refund)
        return store.mark_closed(order_num, cents, recheck)
    if trade_status == WAITING_TRADE_STATUS:
        before = store.get(order_num)
        if before is None:
            return Transition(Outcome.NOT_FOUND, None)
        if cents is not None and before.total_cents != cents:
            return Transition(Outcome.MISMATCH, before)
        return Transition(Outcome.KEPT, before)
    raise ValueError(f"unknown trade_status {trade_status[:40]!r}")


def _paid_then_refunded(
    store: OrderStore, order_num: str, cents: Optional[int], trade_no: Optional[str], paid_at: Optional[datetime],
    refund: Optional[AlipayRefund],
) -> Transition:
    """TRADE_CLOSED after a payment (Alipay: "支付完成后全额退款"): paid and refunded at Alipay.

    An unpaid or closed order gets both in one write, and leaves the reconcile index; a late
    TRADE_SUCCESS is then a duplicate. A paid one gets the refund recorded, never a downgrade.
    """
    if cents is None or not trade_no:
        raise ValueError("a close after payment needs the amount and Alipay's trade_no")
    refund = refund or AlipayRefund(cents, None, clock.iso())  # closed after payment: all of it, time unknown
    fee = refund.refund_fee if refund.refund_fee is not None else cents  # a close after payment refunded it all
    if not 0 < fee <= cents:
        raise ValueError(f"refund_fee {fee} is not within the trade's {cents} cents")
    record = Refund(fee, REFUND_DONE, refund.refunded_at, refund.refunded_at, attempt=secrets.token_hex(16),
                    origin=MADE_AT_ALIPAY)
    result = store.mark_paid_refunded(order_num, cents, trade_no, clock.iso(paid_at), refund.key(), record)
    if result.outcome is Outcome.APPLIED:
        log.error("order %s: Alipay reports it paid and refunded %s cents (%s); recorded as paid and refunded at Alipay",
                  order_num, fee, refund.key())
        return result
    if result.outcome is Outcome.ALREADY:  # paid here already: a refund like any other made at Alipay
        recorded = apply_alipay_refund(store, order_num, refund)
        return Transition(Outcome.APPLIED if recorded.outcome is Outcome.APPLIED else Outcome.KEPT, result.before)
    return result


RECORD_ATTEMPTS = 5  # each failed attempt means another writer changed the order meanwhile


def apply_alipay_refund(store: OrderStore, order_num: str, refund: AlipayRefund) -> Transition:
    """Alipay says the paid trade has refunded ``refund.refund_fee`` cents in all, the latest
    through ``refund.out_biz_no``: make the ledger agree, never counting a refund twice.

    The one entry point for every report of a refund (notify, reconcile, the daily bill). An
    ``out_biz_no`` that is one of our ``outRequestNo`` is our refund: a PENDING one becomes
    REFUNDED. Whatever Alipay has refunded beyond what the ledger holds is recorded as one refund
    made at Alipay (``origin`` "alipay", keyed by ``out_biz_no``), so ``refundedAmount`` reaches
    Alipay's figure; repeats and reordered reports add nothing. A report of one refund's own
    ``cents`` (the bill) records exactly that refund under its ``out_biz_no``, once. APPLIED when the
    ledger changed, ALREADY when it already agreed, MISMATCH when the order is not paid here (or the
    named refund's amount differs), NOT_FOUND.
    """
    for _ in range(RECORD_ATTEMPTS):
        order = store.get(order_num)
        if order is None:
            return Transition(Outcome.NOT_FOUND, None)
        if order.status != PAID:
            log.error("order %s: Alipay reports a refund, but the order is not paid here", order_num)
            return Transition(Outcome.MISMATCH, order)
        mine = order.refunds.get(refund.out_biz_no) if refund.out_biz_no else None
        if mine is not None and mine.origin != MADE_AT_ALIPAY:
            if refund.cents is not None and refund.cents != mine.cents:
                log.error("order %s: Alipay reports refund %s of %s cents, this ledger %s", order_num, refund.out_biz_no,
                          refund.cents, mine.cents)
                return Transition(Outcome.MISMATCH, order)
            if mine.status == REFUND_PENDING:
                if store.settle_refund(order_num, refund.out_biz_no, mine.cents, refund.refunded_at)[0]:
                    log.info("order %s: Alipay confirms refund %s", order_num, refund.out_biz_no)
                    return Transition(Outcome.APPLIED, order)
                continue  # changed meanwhile: look again
            if mine.status == REFUND_FAILED:
                log.error("order %s: Alipay reports refund %s made, which this ledger released; check it by hand",
                          order_num, refund.out_biz_no)
            if (refund.refund_fee or 0) > order.refunded_cents:
                log.error("order %s: Alipay has refunded %s cents, this ledger %s", order_num, refund.refund_fee,
                          order.refunded_cents)
            return Transition(Outcome.ALREADY, order)
        if refund.cents is not None:  # one named refund: recorded once under its out_biz_no
            if refund.key() in order.refunds:
                return Transition(Outcome.ALREADY, order)
            gap = refund.cents
        else:
            gap = (refund.refund_fee or 0) - order.refunded_cents
        if gap <= 0:
            return Transition(Outcome.ALREADY, order)
        cents = min(gap, order.total_cents - order.refunded_cents)
        if cents < gap:
            log.error("order %s: Alipay has refunded %s cents, more than this ledger can hold beside its pending refunds",
                      order_num, refund.refund_fee)
        if cents <= 0:
            return Transition(Outcome.ALREADY, order)
        key = refund.key() if refund.key() not in order.refunds else f"{refund.key()}_{len(order.refunds)}"  # (a total's gap)
        record = Refund(cents, REFUND_DONE, refund.refunded_at, refund.refunded_at, attempt=secrets.token_hex(16),
                        origin=MADE_AT_ALIPAY)
        if store.add_refund(order_num, order.total_cents, key, record)[0]:
            log.warning("order %s: refund %s of %s cents made at Alipay, outside this backend; recorded", order_num, key, cents)
            return Transition(Outcome.APPLIED, order)
    raise RuntimeError(f"order {order_num} kept changing while recording Alipay's refund")
