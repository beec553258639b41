"""The three use cases behind the handlers: add an order, start an app payment, take a notify.

Ordering matters for money: the orderStr is built and signed first (pure, cannot half-write),
then the Order row is put conditionally; only when the put succeeded does the caller see an
orderStr. So a DynamoDB failure never yields an orderStr without its row.
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Optional, Tuple

from . import clock, idempotency, logs, orderstr
from .config import Settings
from .notify import Notify, NotifyRejected, verify_notify
from .orders import Order, OrderExists, OrderStore, Outcome, Transition, apply_trade_status, new_out_trade_no
from .validation import NewOrder

log = logging.getLogger(__name__)

CREATE_ATTEMPTS = 3  # fresh out_trade_no per attempt; a collision is ~impossible, never silent


def _order(new: NewOrder, order_num: str) -> Order:
    return Order(
        order_num=order_num,
        product_id=new.product_id,
        user_id=new.user_id,
        order_name=new.order_name,
        total_cents=new.total_cents,
        body=new.body,
    )


def add_order(store: OrderStore, new: NewOrder, order_num: Optional[str] = None) -> Order:
    """Insert an unpaid order. A given ``order_num`` that exists raises ``OrderExists``."""
    if order_num is not None:
        order = _order(new, order_num)
        store.create(order)
        return order
    return _create_fresh(store, new, at=None)[0]


def start_app_pay(store: OrderStore, cfg: Settings, new: NewOrder, at: Optional[datetime] = None) -> Tuple[Order, str]:
    """Create the Order row (status 0) and return it with its signed orderStr."""
    return _create_fresh(store, new, at, sign=lambda order: _order_str(cfg, order, at))


@dataclass(frozen=True)
class AppPay:
    """pay's answer: the order's number and its signed orderStr (``replayed`` for a retry)."""

    order_num: str
    order_str: str
    replayed: bool = False


def app_pay(
    store: OrderStore,
    cfg: Settings,
    new: NewOrder,
    *,
    keys: Optional[idempotency.IdempotencyStore] = None,
    key: Optional[str] = None,
) -> AppPay:
    """``start_app_pay``, at most once per ``Idempotency-Key`` when the caller sent one.

    Without a key (or without a key store configured) every request is a new order, as in seed 004.
    """
    def operation() -> dict:
        order, order_str = start_app_pay(store, cfg, new)
        return {"orderNum": order.order_num, "orderStr": order_str}

    if key is None or keys is None:
        if key is not None:
            log.warning("Idempotency-Key sent but IDEMPOTENCY_TABLE is not configured; ignoring it")
        result, replayed = operation(), False
    else:
        outcome = idempotency.run_once(
            keys, scope="pay", caller=new.user_id, key=key, request=asdict(new), operation=operation,
            ttl=cfg.idempotency_ttl,
        )
        result, replayed = outcome.result, outcome.replayed
    logs.bind(order_num=result["orderNum"])
    log.info("orderStr issued%s", " (replayed for its Idempotency-Key)" if replayed else "")
    return AppPay(result["orderNum"], result["orderStr"], replayed)


def _order_str(cfg: Settings, order: Order, at: Optional[datetime]) -> str:
    request = orderstr.AppPayOrder(order.order_num, order.total_cents, order.order_name, order.body)
    return orderstr.app_pay(
        app_id=cfg.app_id, private_key=cfg.app_private_key, notify_url=cfg.notify_url, order=request, at=at
    )


def _create_fresh(store: OrderStore, new: NewOrder, at: Optional[datetime], sign=None) -> Tuple[Order, str]:
    for _ in range(CREATE_ATTEMPTS):
        order = _order(new, new_out_trade_no(at))
        signed = sign(order) if sign else ""  # before the write: nothing to undo if it fails
        try:
            store.create(order)
        except OrderExists:
            log.warning("out_trade_no collision on %s; drawing another", order.order_num)
            continue
        return order, signed
    raise RuntimeError(f"no free out_trade_no after {CREATE_ATTEMPTS} attempts")


@dataclass(frozen=True)
class NotifyResult:
    """What a notify did. ``answer`` is the word Alipay reads: ``success`` stops its retries."""

    answer: str
    reason: str
    notify: Optional[Notify] = None
    transition: Optional[Transition] = None


def take_notify(store: OrderStore, cfg: Settings, raw: bytes) -> NotifyResult:
    """Verify a notify and apply it to its order, exactly once (duplicates answer success)."""
    try:
        notify = verify_notify(raw, public_key=cfg.alipay_public_key, app_id=cfg.app_id, seller_id=cfg.seller_id)
    except NotifyRejected as exc:
        return NotifyResult("fail", f"rejected: {exc.reason}")
    logs.bind(order_num=notify.out_trade_no, trade_status=notify.trade_status)
    try:
        paid_at = clock.parse_alipay_time(notify.gmt_payment) if notify.gmt_payment else None
        transition = apply_trade_status(
            store, notify.out_trade_no, notify.trade_status, notify.total_cents, notify.trade_no, paid_at
        )
    except ValueError as exc:  # unknown trade_status or malformed gmt_payment: not acknowledged
        return NotifyResult("fail", f"rejected: {exc}", notify)
    outcome = transition.outcome
    if outcome is Outcome.MISMATCH:
        log.error("notify amount differs from order %s: refusing", notify.out_trade_no)
    answer = "success" if outcome.handled else "fail"
    return NotifyResult(answer, f"{notify.trade_status}: {outcome.value}", notify, transition)
