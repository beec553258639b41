"""Refunds (``alipay.trade.refund``): full or partial, idempotent on out_request_no, never more
than was paid — also under concurrent calls.

The order row is the ledger. A refund is first *reserved* in it with one conditional write
(``refunds[out_request_no]`` = PENDING and ``refundedAmount += cents``, only while
refundedAmount <= total - cents), then sent to Alipay, then marked REFUNDED. Reserving before
asking Alipay means two concurrent refunds cannot both fit in the same paid cents.

When Alipay's answer is unknown (timeout, system error) the reservation stays: its cents remain
committed, and calling again with the same out_request_no asks Alipay again, which answers a
repeat with the original result (``fund_change`` N) instead of refunding twice. Only a definite
refusal to the call that made the reservation gives the cents back; that call knows its own
reservation by a random ``attempt`` token written with it, also when the write landed but its
answer was lost and botocore's retry found the record already there.

The order's status stays 1 (paid) whatever is refunded; Alipay's later notify (TRADE_SUCCESS
after a partial refund, TRADE_CLOSED after a full one) moves nothing (see orders.judge).
"""
from __future__ import annotations

import logging
import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Dict, Mapping, Optional, Protocol, Tuple, Union

from .domain import clock
from .alipay.gateway import AlipayError, AlipayGateway, GatewayError
from .domain.orders import MAX_REFUNDS, PAID, REFUND_DONE, REFUND_FAILED, REFUND_PENDING, Order, Refund
from .environment import int_setting
from .domain.validation import RefundRequest

log = logging.getLogger(__name__)

RESERVE_ATTEMPTS = 5  # each failed attempt means another writer changed the order meanwhile

# alipay.trade.refund sub-codes after which no money moved for this request (seed 002).
DEFINITE_REFUSALS = frozenset({
    "ACQ.INVALID_PARAMETER",
    "ACQ.SELLER_BALANCE_NOT_ENOUGH",
    "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL",
    "ACQ.REASON_TRADE_BEEN_FREEZEN",
    "ACQ.TRADE_NOT_EXIST",
    "ACQ.TRADE_HAS_FINISHED",
    "ACQ.TRADE_STATUS_ERROR",
    "ACQ.REASON_TRADE_REFUND_FEE_ERR",
    "ACQ.TRADE_NOT_ALLOW_REFUND",
    "ACQ.REFUND_FEE_ERROR",
})


SETTLE_GRACE = "REFUND_SETTLE_GRACE_SECONDS"  # refund_settle's first look at a pending refund, after its request
DEFAULT_GRACE_SECONDS = 60  # Alipay: query a refund no sooner than 10 s after asking for it


class RefundStore(Protocol):
    def get(self, order_num: str) -> Optional[Order]: ...

    def add_refund(
        self, order_num: str, total_cents: int, out_request_no: str, refund: Refund, check_at: Optional[str] = None
    ) -> Tuple[bool, Optional[Order]]: ...

    def settle_refund(self, order_num: str, out_request_no: str, cents: int, refunded_at: str) -> Tuple[bool, Optional[Order]]: ...

    def release_refund(self, order_num: str, out_request_no: str, cents: int) -> Tuple[bool, Optional[Order]]: ...

    def fail_refund(self, order_num: str, out_request_no: str, cents: int, reason: str) -> Tuple[bool, Optional[Order]]: ...

    def revive_refund(self, order_num: str, out_request_no: str, cents: int, total_cents: int, refunded_at: str) -> Tuple[bool, Optional[Order]]: ...


def grace(environ: Optional[Mapping[str, str]] = None) -> timedelta:
    """How long a refund may stay PENDING before refund_settle asks Alipay about it."""
    env = os.environ if environ is None else environ
    return timedelta(seconds=int_setting(env, SETTLE_GRACE, DEFAULT_GRACE_SECONDS, minimum=0))


@dataclass(frozen=True)
class RefundResult:
    """``code``: 200 refunded, 404 no such order, 409 not possible as asked, 422 refused by
    Alipay (nothing refunded), 502 outcome unknown (retry with the same out_request_no)."""

    code: int
    msg: str
    request: RefundRequest
    refund: Optional[Refund] = None
    order: Optional[Order] = None

    def data(self) -> Optional[Dict[str, Any]]:
        if self.refund is None:
            return None
        data: Dict[str, Any] = {
            "outTradeNo": self.request.out_trade_no,
            "outRequestNo": self.request.out_request_no,
            **self.refund.to_dict(),
        }
        data.pop("attempt", None)  # the ledger's own bookkeeping
        if self.order is not None:
            data["totalAmount"] = self.order.total_cents
            data["refundedAmount"] = self.order.refunded_cents
        return data


def _reserve(store: RefundStore, req: RefundRequest, at: Optional[datetime]) -> Union[RefundResult, Tuple[Refund, bool]]:
    """The refund record to send: an existing one (same out_request_no) or a fresh reservation.
    The flag says whether this call made the reservation."""
    for _ in range(RESERVE_ATTEMPTS):
        order = store.get(req.out_trade_no)
        if order is None:
            return RefundResult(404, f"order {req.out_trade_no} not found", req)
        existing = order.refunds.get(req.out_request_no)
        if existing is not None:
            if req.cents is not None and existing.cents != req.cents:
                return RefundResult(409, f"outRequestNo {req.out_request_no} is a refund of {existing.cents} cents", req, existing, order)
            if existing.status == REFUND_FAILED:
                return RefundResult(422, f"Alipay refused refund {req.out_request_no} ({existing.reason or 'no reason given'}); "
                                         "nothing was refunded, use a new outRequestNo", req, existing, order)
            return existing, False
        if order.status != PAID:
            return RefundResult(409, "only a paid order can be refunded", req, order=order)
        left = order.total_cents - order.refunded_cents
        if left <= 0:
            return RefundResult(409, "the order is fully refunded", req, order=order)
        cents = left if req.cents is None else req.cents
        if cents > left:
            return RefundResult(409, f"refundAmount exceeds what is left to refund ({left} cents)", req, order=order)
        if len(order.refunds) >= MAX_REFUNDS:
            return RefundResult(409, f"at most {MAX_REFUNDS} refunds per order", req, order=order)
        requested = at or clock.now()
        refund = Refund(cents, REFUND_PENDING, clock.iso(requested), reason=req.reason, attempt=secrets.token_hex(16))
        applied, _ = store.add_refund(req.out_trade_no, order.total_cents, req.out_request_no, refund,
                                      check_at=clock.iso(requested + grace()))
        if applied:
            return refund, True
    return RefundResult(409, "the order kept changing; try again", req)


def refund(store: RefundStore, gateway: AlipayGateway, req: RefundRequest, at: Optional[datetime] = None) -> RefundResult:
    """Refund ``req`` exactly once, whatever the number of calls and their interleaving."""
    reserved = _reserve(store, req, at)
    if isinstance(reserved, RefundResult):
        return reserved
    record, made_here = reserved
    if record.status == REFUND_DONE:
        return RefundResult(200, "already refunded", req, record, store.get(req.out_trade_no))
    try:
        answer = gateway.trade_refund(req.out_trade_no, record.cents, req.out_request_no, record.reason)
    except AlipayError as exc:
        if exc.sub_code in DEFINITE_REFUSALS and made_here:
            store.release_refund(req.out_trade_no, req.out_request_no, record.cents)
            return RefundResult(422, f"Alipay refused the refund: {exc.sub_code} {exc.sub_msg or ''}".strip(), req)
        log.warning("refund %s/%s: %s; kept pending", req.out_trade_no, req.out_request_no, exc)
        return RefundResult(502, f"refund pending ({exc.sub_code or exc.code}); call again with the same outRequestNo", req, record)
    except GatewayError as exc:
        log.warning("refund %s/%s: %s; kept pending", req.out_trade_no, req.out_request_no, exc)
        return RefundResult(502, "refund pending (no answer from Alipay); call again with the same outRequestNo", req, record)

    refunded_at = _refunded_at(answer.gmt_refund_pay)
    applied, before = store.settle_refund(req.out_trade_no, req.out_request_no, record.cents, refunded_at)
    if not applied and (before is None or before.refunds.get(req.out_request_no, record).status != REFUND_DONE):
        # A concurrent call's definite refusal released the record (or refund_settle failed it)
        # while this call's retry went through at Alipay: count the (now certain) refund again.
        done = Refund(record.cents, REFUND_DONE, record.requested_at, refunded_at, record.reason, secrets.token_hex(16))
        if before is not None and req.out_request_no in before.refunds:
            applied = store.revive_refund(req.out_trade_no, req.out_request_no, record.cents, before.total_cents, refunded_at)[0]
        else:
            applied = before is not None and store.add_refund(req.out_trade_no, before.total_cents, req.out_request_no, done)[0]
        if not applied:
            log.error("refund %s/%s done at Alipay but not recorded", req.out_trade_no, req.out_request_no)
            return RefundResult(500, "refunded at Alipay but not recorded here; check the order by hand", req, done)
    order = store.get(req.out_trade_no)
    if order is not None and answer.refund_fee_cents is not None and answer.refund_fee_cents > order.refunded_cents:
        log.error("order %s: Alipay has refunded %s cents, this ledger %s", req.out_trade_no, answer.refund_fee_cents, order.refunded_cents)
    final = order.refunds.get(req.out_request_no, record) if order else record
    return RefundResult(200, "refunded" if answer.fund_change else "already refunded", req, final, order)


def refusal(exc: AlipayError) -> str:
    """Alipay's reason, as recorded on a FAILED refund."""
    return f"{exc.sub_code or exc.code}: {exc.sub_msg or ''}".strip().rstrip(":")


def refunded_at(gmt_refund_pay: Optional[str]) -> str:
    """When Alipay refunded (its ``gmt_refund_pay``), ISO; now when it did not say."""
    return _refunded_at(gmt_refund_pay)


def _refunded_at(gmt_refund_pay: Optional[str]) -> str:
    if gmt_refund_pay:
        try:
            return clock.iso(clock.parse_alipay_time(gmt_refund_pay))
        except ValueError:
            pass
    return clock.iso()
