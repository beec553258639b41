"""The use cases behind the handlers: add an order, start a payment (app, page, wap, precreate),
take a notify, show a sync return.

Ordering matters for money: the orderStr (or page request) is built and signed first (pure,
cannot half-write), then the Order row is put conditionally; only when the put succeeded does the
caller see it. So a DynamoDB failure never yields a signed request without its row. precreate is
the exception that proves the rule: it creates a trade at Alipay, so its row is put first.
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Dict, Mapping, Optional, Tuple

from .domain import clock, idempotency, money
from . import logs, reconcile
from .alipay import orderstr
from .config import Settings
from .alipay.notify import Notify, NotifyRejected, amount_cents, verify_notify
from .domain.orders import CLOSED, AlipayRefund, Order, OrderExists, OrderStore, Outcome, Transition, apply_trade_status, new_out_trade_no
from .domain.validation import APP, PAGE, PRECREATE, WAP, NewOrder, RequestRefused

log = logging.getLogger(__name__)

CREATE_ATTEMPTS = 3  # fresh out_trade_no per attempt; a collision is ~impossible, never silent


def _order(new: NewOrder, order_num: str) -> Order:
    """A new unpaid order, in the reconcile index from the start (its first look is due later)."""
    created = clock.now()
    return Order(
        order_num=order_num,
        product_id=new.product_id,
        user_id=new.user_id,
        order_name=new.order_name,
        total_cents=new.total_cents,
        body=new.body,
        order_date=clock.iso(created),
        reconcile_at=reconcile.first_look(created),
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


def start_pay(
    store: OrderStore, cfg: Settings, new: NewOrder, channel: str = APP, at: Optional[datetime] = None
) -> Tuple[Order, Dict[str, str]]:
    """Create the Order row (status 0) and return it with what the channel's client needs.

    app: ``{orderStr}`` for Alipay's mobile SDK; page / wap: ``{payUrl, payForm}``, the same
    signed request as a GET URL to redirect to and as a self-submitting HTML form; precreate:
    ``{qrCode}`` from Alipay's gateway.
    """
    if channel == APP:
        order, order_str = start_app_pay(store, cfg, new, at)
        return order, {"orderStr": order_str}
    if channel == PRECREATE:
        return start_precreate(store, cfg, new, at)
    build = {PAGE: orderstr.page_pay, WAP: orderstr.wap_pay}[channel]
    order, page = _create_fresh(store, new, at, sign=lambda order: build(
        order=_pay_order(order), return_url=cfg.return_url, gateway=cfg.gateway_url, **_signer(cfg, at)
    ))
    return order, {"payUrl": page.url, "payForm": page.form}


def start_precreate(store: OrderStore, cfg: Settings, new: NewOrder, at: Optional[datetime] = None) -> Tuple[Order, Dict[str, str]]:
    """Create the Order row, then the trade at Alipay (``alipay.trade.precreate``) for its QR code.

    Here the row must come first: precreate makes a trade at Alipay, and a trade whose row is
    missing would be paid into nothing. A failed call leaves only an unpaid row (reconcile closes
    it) and raises ``PaymentNotCreated``.
    """
    from .alipay.gateway import AlipayError, AlipayGateway, GatewayError  # noqa: PLC0415 - only QR pay calls Alipay

    cfg.require("alipay_public_key", "gateway_url")  # before the write: bad config writes nothing
    order = _create_fresh(store, new, at)[0]
    try:
        answer = AlipayGateway.from_settings(cfg).trade_precreate(_pay_order(order), cfg.notify_url, at)
    except GatewayError as exc:
        raise PaymentNotCreated(str(exc), exc.sub_code if isinstance(exc, AlipayError) else None) from exc
    return order, {"qrCode": answer.qr_code}


class PaymentNotCreated(Exception):
    """Alipay did not create the trade (precreate refused or unreachable); the row stays unpaid.
    ``sub_code`` is Alipay's reason when it answered."""

    def __init__(self, reason: str, sub_code: Optional[str] = None) -> None:
        super().__init__(reason)
        self.sub_code = sub_code


def _pay_order(order: Order) -> orderstr.PayOrder:
    return orderstr.PayOrder(order.order_num, order.total_cents, order.order_name, order.body)


def _signer(cfg: Settings, at: Optional[datetime]) -> Dict[str, Any]:
    """The builder core's signing arguments, certificate SNs included in certificate mode."""
    return {
        "app_id": cfg.app_id, "private_key": cfg.app_private_key, "notify_url": cfg.notify_url,
        "cert_sn": cfg.cert_sn, "at": at,
    }


class ReplayedOrderClosed(RequestRefused):
    """An ``Idempotency-Key`` retry whose order was closed since: its orderStr can no longer be
    paid, and the key stands for that one order, so a new purchase needs a new key."""

    status = 409


@dataclass(frozen=True)
class Payment:
    """pay's answer: the order's number and what its channel's client needs (``replayed`` for a retry)."""

    order_num: str
    data: Dict[str, str]
    replayed: bool = False


def pay(
    store: OrderStore,
    cfg: Settings,
    new: NewOrder,
    channel: str = APP,
    *,
    keys: Optional[idempotency.IdempotencyStore] = None,
    key: Optional[str] = None,
) -> Payment:
    """``start_pay``, at most once per ``Idempotency-Key`` when the caller sent one.

    Without a key (or without a key store configured) every request is a new order, as in seed 004.
    The channel is part of the request's fingerprint: the same key for another channel is a misuse.
    """
    def operation() -> Dict[str, str]:
        order, data = start_pay(store, cfg, new, channel)
        return {"orderNum": order.order_num, **data}

    if key is None or keys is None:
        if key is not None:
            log.warning("Idempotency-Key sent but IDEMPOTENCY_TABLE is not configured; ignoring it")
        result, replayed = operation(), False
    else:
        outcome = idempotency.run_once(
            keys, scope="pay", caller=new.user_id, key=key, request={**asdict(new), "channel": channel},
            operation=operation, ttl=cfg.idempotency_ttl,
        )
        result, replayed = dict(outcome.result), outcome.replayed
    order_num = result.pop("orderNum")
    if replayed:
        _check_replayable(store, order_num)
    logs.bind(order_num=order_num, total_amount=money.cents_to_yuan(new.total_cents))
    log.info("payment issued (channel %s)%s", channel, " (replayed for its Idempotency-Key)" if replayed else "")
    return Payment(order_num, result, replayed)


def _check_replayable(store: OrderStore, order_num: str) -> None:
    """A replay hands out the stored orderStr only while its order can still be paid: a closed
    order's (reconcile closes unpaid orders after their timeout, well within the key's hour) is a
    409, never a fresh order — one key stands for at most one order, or a buyer could pay both."""
    order = store.get(order_num)
    if order is not None and order.status == CLOSED:
        logs.bind(order_num=order_num)
        raise ReplayedOrderClosed(
            f"order {order_num} is closed and can no longer be paid; "
            f"a new purchase needs a new {idempotency.HEADER}"
        )


def _order_str(cfg: Settings, order: Order, at: Optional[datetime]) -> str:
    return orderstr.app_pay(order=_pay_order(order), **_signer(cfg, at))


def _create_fresh(store: OrderStore, new: NewOrder, at: Optional[datetime], sign=None) -> Tuple[Order, Any]:
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
        notify = verify_notify(
            raw, public_key=cfg.alipay_public_key, app_id=cfg.app_id, seller_id=cfg.seller_id,
            alipay_cert_sn=cfg.alipay_cert_sn,
        )
    except NotifyRejected as exc:
        return NotifyResult("fail", f"rejected: {exc.reason}")
    logs.bind(order_num=notify.out_trade_no, trade_status=notify.trade_status, total_amount=money.cents_to_yuan(notify.total_cents))
    try:
        paid_at = clock.parse_alipay_time(notify.gmt_payment) if notify.gmt_payment else None
        transition = apply_trade_status(
            store, notify.out_trade_no, notify.trade_status, notify.total_cents, notify.trade_no, paid_at,
            refund=notify_refund(notify.params),
        )
    except (ValueError, NotifyRejected) as exc:  # unknown trade_status, malformed time or refund_fee: not acknowledged
        return NotifyResult("fail", f"rejected: {exc}", notify)
    outcome = transition.outcome
    if outcome is Outcome.MISMATCH:
        log.error("notify amount differs from order %s: refusing", notify.out_trade_no)
    answer = "success" if outcome.handled else "fail"
    return NotifyResult(answer, f"{notify.trade_status}: {outcome.value}", notify, transition)


def notify_refund(params: Mapping[str, str]) -> Optional[AlipayRefund]:
    """The refund a notify reports (``refund_fee``: the trade's refunded total, ``out_biz_no``,
    ``gmt_refund`` as ``yyyy-MM-dd HH:mm:ss[.SSS]``), or None when it reports none."""
    fee = params.get("refund_fee")
    if not fee:
        return None
    if fee in ("0", "0.0", "0.00"):  # nothing refunded yet
        return None
    cents = amount_cents(fee)
    gmt_refund = params.get("gmt_refund") or ""
    refunded_at = clock.iso(clock.parse_alipay_time(gmt_refund[:19])) if gmt_refund else clock.iso()
    return AlipayRefund(cents, params.get("out_biz_no") or None, refunded_at)


def take_return(store: OrderStore, cfg: Settings, query: bytes) -> Optional[Order]:
    """Verify Alipay's sync return and read its order — a read only: the return proves nothing paid.

    Raises ``NotifyRejected`` when the return is not Alipay's or not ours.
    """
    from .alipay.sync_return import verify_return  # noqa: PLC0415 - only pay_return needs it

    back = verify_return(query, public_key=cfg.alipay_public_key, app_id=cfg.app_id, alipay_cert_sn=cfg.alipay_cert_sn)
    order = store.get(back.out_trade_no)
    if order is not None and back.total_cents is not None and back.total_cents != order.total_cents:
        log.error("return for %s names another amount than the order", back.out_trade_no)
    return order
