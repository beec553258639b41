"""The daily bill matched against the Order table: what a finance team reconciles against.

Once a day (after Alipay publishes, about 09:00 Asia/Shanghai) ``bill_reconcile`` takes the
previous day's trade bill (shared/alipay/bill.py) and matches every line with the Order table
by out_trade_no, never with a Scan: first with the day's paid orders (the ``pay-day`` index,
read whole: it also tells which of them the bill lacks), then by BatchGetItem for every line
the index does not settle. Each difference is a ``Discrepancy`` of one ``KINDS``:

- ``paid_at_alipay``: a payment on the bill whose order is unpaid or closed here (a lost notify
  reconcile did not catch). Applied through the same transition as a notify, logged as an error.
- ``amount_mismatch``: the bill's 订单金额 differs from the order's amount. Never applied.
- ``unknown_order``: a bill line whose out_trade_no is not in the table.
- ``trade_no_mismatch``: paid here with another Alipay trade_no than the bill's.
- ``refund_settled``: a refund the bill shows done that was still PENDING here: settled.
- ``refund_not_recorded``: a refund on the bill this table does not have: recorded as made at
  Alipay (the refunds module's ``apply_alipay_refund``); or one it has as FAILED, or on an
  order not paid here: reported only.
- ``refund_amount_mismatch``: a refund recorded here with other cents than the bill's.
- ``missing_from_bill``: paid here on that day (payDay) but absent from Alipay's bill.

Re-running a day is safe: every write is the conditional one of the transition, so a second run
changes nothing more and reports what is still different (the report bucket keeps each version).
"""
from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from datetime import date as Date, timedelta
from typing import Any, Dict, Iterable, List, Mapping, Optional, Protocol, Sequence, Tuple

from .alipay import bill as alipay_bill
from .alipay.bill import REFUND, TRADE, Bill, BillLine
from .domain import clock
from .environment import ConfigError
from .domain.orders import (
    PAID, REFUND_DONE, REFUND_PENDING, AlipayRefund, Order, OrderStore, OrderSummary, Outcome, apply_alipay_refund,
    apply_trade_status,
)

log = logging.getLogger(__name__)

PAID_AT_ALIPAY = "paid_at_alipay"
AMOUNT_MISMATCH = "amount_mismatch"
UNKNOWN_ORDER = "unknown_order"
TRADE_NO_MISMATCH = "trade_no_mismatch"
REFUND_SETTLED = "refund_settled"
REFUND_NOT_RECORDED = "refund_not_recorded"
REFUND_AMOUNT_MISMATCH = "refund_amount_mismatch"
MISSING_FROM_BILL = "missing_from_bill"
KINDS = (
    PAID_AT_ALIPAY, AMOUNT_MISMATCH, UNKNOWN_ORDER, TRADE_NO_MISMATCH, REFUND_SETTLED, REFUND_NOT_RECORDED,
    REFUND_AMOUNT_MISMATCH, MISSING_FROM_BILL,
)
APPLIED, NONE = "applied", "none"  # what bill_reconcile did about a discrepancy

_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
TRADE_SUCCESS = "TRADE_SUCCESS"  # a payment row of the bill is a completed payment


class BillStore(OrderStore, Protocol):
    def batch_get(self, order_nums: Iterable[str]) -> Dict[str, OrderSummary]:
        """What the bill needs of the stored orders among ``order_nums``, by orderNum."""

    def paid_on(self, day: str) -> List[Tuple[str, int, Optional[str]]]:
        """``(orderNum, cents, tradeNo)`` of the orders paid on ``day`` (the pay-day index)."""

    def set_pay_day(self, order_num: str, day: str) -> bool:
        """Put a paid order into the pay-day index under ``day``."""

    def settle_refund(self, order_num: str, out_request_no: str, cents: int, refunded_at: str) -> Tuple[bool, Optional[Order]]:
        """Mark a PENDING refund done."""


@dataclass(frozen=True)
class Discrepancy:
    kind: str
    out_trade_no: str
    action: str
    detail: str
    bill_cents: Optional[int] = None
    order_cents: Optional[int] = None
    trade_no: Optional[str] = None
    out_request_no: Optional[str] = None
    row: Optional[int] = None

    def to_dict(self) -> Dict[str, Any]:
        names = {
            "kind": self.kind, "outTradeNo": self.out_trade_no, "action": self.action, "detail": self.detail,
            "billCents": self.bill_cents, "orderCents": self.order_cents, "tradeNo": self.trade_no,
            "outRequestNo": self.out_request_no, "row": self.row,
        }
        return {key: value for key, value in names.items() if value is not None}


@dataclass
class Result:
    """One day matched: the bill's size, how many lines matched, and every discrepancy."""

    day: str
    bill: Optional[Bill]
    matched: int = 0
    paid_here: int = 0
    pay_day_set: int = 0  # paid rows given (or moved to) this payDay from the bill
    discrepancies: List[Discrepancy] = field(default_factory=list)

    def counts(self) -> Dict[str, int]:
        counts = {kind: 0 for kind in KINDS}
        for item in self.discrepancies:
            counts[item.kind] += 1
        return counts

    def summary(self) -> Dict[str, Any]:
        bill = self.bill
        trades = list(bill.of_kind(TRADE)) if bill else []
        refunds = list(bill.of_kind(REFUND)) if bill else []
        return {
            "billDate": self.day,
            "bill": {
                "found": bill is not None, "account": bill.account if bill else None,
                "trades": len(trades), "tradeCents": sum(line.received_cents for line in trades),
                "refunds": len(refunds), "refundCents": sum(line.refund_cents for line in refunds),
            },
            "matched": self.matched, "paidHere": self.paid_here, "payDaySet": self.pay_day_set,
            "discrepancies": sum(self.counts().values()), "counts": self.counts(),
        }

    def report(self) -> Dict[str, Any]:
        return {**self.summary(), "generatedAt": clock.iso(), "items": [d.to_dict() for d in self.discrepancies]}


BUCKET = "BILL_REPORT_BUCKET"
_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def report_bucket(environ: Optional[Mapping[str, str]] = None) -> str:
    """``BILL_REPORT_BUCKET``: the S3 bucket of the reports (serverless.yml sets it)."""
    name = (os.environ if environ is None else environ).get(BUCKET, "").strip()
    if not name:
        raise ConfigError(BUCKET, "missing")
    if not _BUCKET_NAME.fullmatch(name):
        raise ConfigError(BUCKET, "not an S3 bucket name")
    return name


# --- which day ---------------------------------------------------------------------------------

def previous_day(today: Optional[Date] = None) -> str:
    """Yesterday in Asia/Shanghai: the newest bill Alipay publishes."""
    today = today or clock.now().date()
    return (today - timedelta(days=1)).isoformat()


def bill_day(event: Any, today: Optional[Date] = None) -> str:
    """The day an event asks for: ``{"date": "YYYY-MM-DD"}`` (not after today, Shanghai), or —
    for EventBridge's scheduled event and ``{}`` — the previous day. ``ValueError`` otherwise."""
    today = today or clock.now().date()
    wanted = event.get("date") if isinstance(event, Mapping) else None
    if wanted is None:
        return previous_day(today)
    if not isinstance(wanted, str) or not _DAY.fullmatch(wanted):
        raise ValueError("date must be a YYYY-MM-DD string")
    try:
        day = Date.fromisoformat(wanted)
    except ValueError:
        raise ValueError(f"date {wanted!r} is not a calendar day") from None
    if day > today:
        raise ValueError(f"date {wanted} is after today in Asia/Shanghai: Alipay has no bill for it")
    return wanted


# --- the bill ------------------------------------------------------------------------------------

def fetch(gateway, day: str, download: Optional[alipay_bill.Fetch] = None) -> Optional[Bill]:
    """The day's parsed bill, or None when Alipay says it has none (``isp.bill_not_exist``)."""
    from .alipay.gateway import BILL_NOT_EXIST, AlipayError  # noqa: PLC0415 - http.client/ssl load per run only

    try:
        url = gateway.data_dataservice_bill_downloadurl_query(day)
    except AlipayError as exc:
        if (exc.sub_code or "").lower() == BILL_NOT_EXIST:
            log.warning("bill %s: Alipay has no bill for the day (%s)", day, exc.sub_code)
            return None
        raise
    return alipay_bill.parse_zip(alipay_bill.download(url, download))


# --- matching ------------------------------------------------------------------------------------

def match(store: BillStore, day: str, bill: Optional[Bill]) -> Result:
    """Match every line of ``bill`` (None: Alipay has no bill, i.e. no line) with the table.

    The day's paid orders are read first, from the pay-day index (a few Query pages of hundreds
    of orders each): a payment line the index holds for the day with the same cents and trade_no
    is matched there, and that is nearly every line of a normal day. Every other line — refunds,
    payments the index holds differently or not for the day — is read by BatchGetItem (strongly
    consistent) and judged on the whole row, so an index that lags a write only costs a read."""
    result = Result(day, bill)
    lines: Sequence[BillLine] = bill.lines if bill else ()
    listed = {order_num: (cents, trade_no) for order_num, cents, trade_no in store.paid_on(day)}
    billed = {line.out_trade_no for line in lines if line.kind == TRADE}  # the bill's payments
    indexed = set(listed)  # orders in the pay-day index for the day, as the matching leaves it
    rest = [line for line in lines if not _listed_as_billed(line, listed.get(line.out_trade_no))]
    result.matched = len(lines) - len(rest)
    orders = store.batch_get(line.out_trade_no for line in rest)
    for line in rest:
        order = orders.get(line.out_trade_no)
        found = _unknown(line) if order is None else (_payment if line.kind == TRADE else _refund)(store, day, line, order, result)
        if found is None:
            result.matched += 1
            if line.kind == TRADE:
                indexed.add(line.out_trade_no)
        else:
            result.discrepancies.append(found)
            if found.kind == PAID_AT_ALIPAY and clock.parse_alipay_time(line.finished_at).date().isoformat() == day:
                indexed.add(line.out_trade_no)  # marked paid just now, with this payDay
    result.paid_here = len(indexed)
    for order_num in sorted(listed.keys() - billed):
        cents, trade_no = listed[order_num]
        result.discrepancies.append(Discrepancy(
            MISSING_FROM_BILL, order_num, NONE, f"paid here on {day} but not on Alipay's bill for the day",
            order_cents=cents, trade_no=trade_no,
        ))
    for item in result.discrepancies:
        (log.error if item.kind in (PAID_AT_ALIPAY, AMOUNT_MISMATCH, MISSING_FROM_BILL) else log.warning)(
            "bill %s: %s %s (%s): %s", day, item.kind, item.out_trade_no, item.action, item.detail
        )
    return result


def _listed_as_billed(line: BillLine, listed: Optional[Tuple[int, Optional[str]]]) -> bool:
    """A payment line the pay-day index holds for the day with the bill's cents and trade_no:
    paid here, on that day, as Alipay says — nothing to read or write."""
    if line.kind != TRADE or listed is None:
        return False
    cents, trade_no = listed
    return cents == line.order_cents and not _other_trade(trade_no, line)


def _other_trade(trade_no: Optional[str], line: BillLine) -> bool:
    """Paid here with another Alipay trade_no than the bill's (either side may lack one)."""
    return bool(trade_no and line.trade_no and trade_no != line.trade_no)


def _unknown(line: BillLine) -> Discrepancy:
    what = "payment" if line.kind == TRADE else "refund"
    return Discrepancy(
        UNKNOWN_ORDER, line.out_trade_no, NONE, f"a {what} on Alipay's bill for an order this table does not have",
        bill_cents=line.order_cents if line.kind == TRADE else line.refund_cents, trade_no=line.trade_no,
        out_request_no=line.out_request_no, row=line.row,
    )


def _payment(store: BillStore, day: str, line: BillLine, order: OrderSummary, result: Result) -> Optional[Discrepancy]:
    def found(kind: str, action: str, detail: str) -> Discrepancy:
        return Discrepancy(kind, line.out_trade_no, action, detail, line.order_cents, order.total_cents, line.trade_no, row=line.row)

    if order.total_cents != line.order_cents:
        return found(AMOUNT_MISMATCH, NONE, "Alipay's 订单金额 differs from the order's amount; not applied")
    if order.status != PAID:
        paid_at = clock.parse_alipay_time(line.finished_at)
        transition = apply_trade_status(store, line.out_trade_no, TRADE_SUCCESS, line.order_cents, line.trade_no, paid_at)
        if transition.outcome is Outcome.APPLIED:
            return found(PAID_AT_ALIPAY, APPLIED, f"paid at Alipay at {line.finished_at}, status {order.status} here; marked paid")
        if transition.outcome is not Outcome.ALREADY or transition.before is None:  # ALREADY: a notify landed meanwhile
            return found(AMOUNT_MISMATCH, NONE, f"could not apply the payment: {transition.outcome.value}")
        before = transition.before
        order = OrderSummary(before.order_num, before.total_cents, before.status, before.trade_no, before.pay_day)
    if _other_trade(order.trade_no, line):
        return found(TRADE_NO_MISMATCH, NONE, f"paid here with trade_no {order.trade_no}")
    if order.pay_day != day and store.set_pay_day(line.out_trade_no, day):
        result.pay_day_set += 1  # a row paid before the pay-day index, or dated by another clock
    return None


def _refund(store: BillStore, day: str, line: BillLine, order: OrderSummary, result: Result) -> Optional[Discrepancy]:
    """Through the refunds module's one entry point for Alipay's word on a refund
    (``orders.apply_alipay_refund``): a PENDING one of ours is settled, one made at Alipay
    outside this backend is recorded once under its out_request_no."""
    request_no = line.out_request_no or line.out_trade_no  # Alipay's default out_request_no
    recorded = order.refunds.get(request_no)

    def found(kind: str, action: str, detail: str) -> Discrepancy:
        return Discrepancy(
            kind, line.out_trade_no, action, detail, line.refund_cents, recorded.cents if recorded else None,
            line.trade_no, request_no, line.row,
        )

    refunded_at = clock.iso(clock.parse_alipay_time(line.finished_at))
    transition = apply_alipay_refund(
        store, line.out_trade_no, AlipayRefund(None, request_no, refunded_at, cents=line.refund_cents),
    )
    if transition.outcome is Outcome.APPLIED:
        if recorded is not None and recorded.status == REFUND_PENDING:
            return found(REFUND_SETTLED, APPLIED, f"refunded at Alipay at {line.finished_at}, PENDING here; settled")
        return found(REFUND_NOT_RECORDED, APPLIED, f"refunded at Alipay at {line.finished_at}, not here; recorded as made at Alipay")
    if transition.outcome is Outcome.MISMATCH:
        if order.status != PAID:
            return found(REFUND_NOT_RECORDED, NONE, f"refunded at Alipay; the order is status {order.status} here")
        return found(REFUND_AMOUNT_MISMATCH, NONE, "the refund's cents here differ from Alipay's")
    if transition.outcome is Outcome.ALREADY and recorded is not None and recorded.status not in (REFUND_DONE, REFUND_PENDING):
        return found(REFUND_NOT_RECORDED, NONE, f"refunded at Alipay; {recorded.status} here")
    return None


# --- one day, end to end ---------------------------------------------------------------------------

def run(store: BillStore, gateway, reports, day: str, download: Optional[alipay_bill.Fetch] = None) -> Dict[str, Any]:
    """Fetch, match, store the report, emit the metrics; the summary (with the report's URI)."""
    from .aws import metrics  # noqa: PLC0415

    result = match(store, day, fetch(gateway, day, download))
    uri = reports.put(day, result.report())
    for kind, count in result.counts().items():
        metrics.emit({"BillDiscrepancies": (count, "Count")}, dimensions={"Kind": kind}, properties={"billDate": day})
    summary = {**result.summary(), "report": uri}
    (log.error if summary["discrepancies"] else log.info)("bill %s: %s", day, summary)
    return summary
