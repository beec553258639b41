"""The use cases behind the handlers: add an order, start a payment (app, page, wap, precreate,
jsapi, barcode), take a notify, show a sync return.

Ordering matters for money: the orderStr (or page request) is built and signed first (pure,
cannot half-write), then the Order row is put conditionally; only when the put succeeded does the
caller see it. So a DynamoDB failure never yields a signed request without its row. precreate,
jsapi and barcode are the exception that proves the rule: they create a trade at Alipay, so
their row is put first. An order the shop's backend stored beforehand (``add_order``) is paid as
stored: its row exists, so pay only reads it, checks it is the caller's and unpaid, and signs its
amount and subject.
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Callable, Dict, Mapping, Optional, Tuple, Union

from .domain import clock, idempotency, money
from . import barcode, logs, reconcile, telemetry
from .barcode import PaymentPending  # noqa: F401 - pay's answer for a till whose outcome is still open
from .alipay import orderstr
from .config import Settings
from .alipay.notify import Notify, NotifyRejected, amount_cents, verify_notify
from .domain.orders import (
    CLOSED, PAID, UNPAID, AlipayRefund, Order, OrderExists, OrderStore, Outcome, Transition, apply_trade_status,
    new_out_trade_no,
)
from .domain.validation import (
    APP, BARCODE, JSAPI, PAGE, PRECREATE, WAP, NewOrder, PriceRefused, RequestRefused, StoredPurchase,
)

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


PayRequest = Union[NewOrder, StoredPurchase]  # a new order's fields, or an order stored beforehand


def start_app_pay(store: OrderStore, cfg: Settings, new: PayRequest, at: Optional[datetime] = None) -> Tuple[Order, str]:
    """Create the Order row (status 0), or take the stored one, and return it with its signed orderStr."""
    order, _, order_str = _issue(store, new, at, sign=lambda pay_order: orderstr.app_pay(order=pay_order, **_signer(cfg, at)))
    return order, order_str


def start_pay(
    store: OrderStore, cfg: Settings, new: PayRequest, channel: str = APP, at: Optional[datetime] = None,
    biz: Optional[Dict[str, str]] = None,
) -> Tuple[Order, Dict[str, str]]:
    """Create the Order row (status 0) — or take the unpaid one the shop stored — and return it
    with what the channel's client needs.

    app: ``{orderStr}`` for Alipay's mobile SDK; page / wap: ``{payUrl, payForm}``, the same
    signed request as a GET URL to redirect to and as a self-submitting HTML form; precreate:
    ``{qrCode}`` from Alipay's gateway; jsapi: ``{tradeNo}`` for ``my.tradePay``; barcode:
    ``{status, tradeNo?}``, the order settled. ``biz``: the channel's own fields
    (``validation.channel_biz``). Every channel goes through ``_issue``, so each one pays stored
    orders too.
    """
    if channel == APP:
        order, order_str = start_app_pay(store, cfg, new, at)
        return order, {"orderStr": order_str}
    if channel == PRECREATE:
        return start_precreate(store, cfg, new, at)
    if channel == JSAPI:
        return start_jsapi(store, cfg, new, biz or {}, at)
    if channel == BARCODE:
        cfg.require("alipay_public_key", "gateway_url", "barcode_wait")  # before the write
        order, pay_order, _ = _issue(store, new, at)
        return order, barcode.charge(store, cfg, pay_order, biz or {}, at)
    build = {PAGE: orderstr.page_pay, WAP: orderstr.wap_pay}[channel]
    order, _, page = _issue(store, new, at, sign=lambda pay_order: build(
        order=pay_order, return_url=cfg.return_url, gateway=cfg.gateway_url, **_signer(cfg, at)
    ))
    return order, {"payUrl": page.url, "payForm": page.form}


def start_precreate(store: OrderStore, cfg: Settings, new: PayRequest, at: Optional[datetime] = None) -> Tuple[Order, Dict[str, str]]:
    """Create the Order row, then the trade at Alipay (``alipay.trade.precreate``) for its QR code.

    Here the row must come first: precreate makes a trade at Alipay, and a trade whose row is
    missing would be paid into nothing. A failed call leaves only an unpaid row (reconcile closes
    it) and raises ``PaymentNotCreated``.
    """
    order, answer = _create_at_alipay(store, cfg, new, lambda gw, pay_order: gw.trade_precreate(pay_order, cfg.notify_url, at), at)
    return order, {"qrCode": answer.qr_code}


def start_jsapi(store: OrderStore, cfg: Settings, new: PayRequest, buyer: Dict[str, str], at: Optional[datetime] = None) -> Tuple[Order, Dict[str, str]]:
    """Create the Order row, then the trade at Alipay (``alipay.trade.create``) for the buyer inside
    Alipay's app; its ``tradeNo`` is what the front end hands to ``my.tradePay({tradeNO})``.
    Failures as for precreate: ``PaymentNotCreated``, the unpaid row left for reconcile."""
    order, answer = _create_at_alipay(
        store, cfg, new, lambda gw, pay_order: gw.trade_create(pay_order, cfg.notify_url, buyer, at), at
    )
    return order, {"tradeNo": answer.trade_no}


def _create_at_alipay(store: OrderStore, cfg: Settings, new: PayRequest, create, at: Optional[datetime]):
    """The row first (or the stored one), then ``create(gateway, pay_order)`` at Alipay; a refusal or silence is ``PaymentNotCreated``."""
    from .alipay.gateway import AlipayError, AlipayGateway, GatewayError  # noqa: PLC0415 - only these channels call Alipay

    cfg.require("alipay_public_key", "gateway_url")  # before the write: bad config writes nothing
    order, pay_order, _ = _issue(store, new, at)
    try:
        return order, create(AlipayGateway.from_settings(cfg), pay_order)
    except GatewayError as exc:
        telemetry.note(reason=telemetry.ALIPAY_REFUSED)
        raise PaymentNotCreated(str(exc), exc.sub_code if isinstance(exc, AlipayError) else None) from exc


class PaymentNotCreated(Exception):
    """Alipay did not create the trade (precreate refused or unreachable); the row stays unpaid.
    ``sub_code`` is Alipay's reason when it answered."""

    def __init__(self, reason: str, sub_code: Optional[str] = None) -> None:
        super().__init__(reason)
        self.sub_code = sub_code


class UnknownOrder(RequestRefused):
    """No stored order by that number for this caller (another user's order answers the same)."""

    status = 404
    reason = "unknown_order"


class OrderNotPayable(RequestRefused):
    """The stored order is paid, closed or past its payment window: a new orderStr would be wrong."""

    status = 409
    reason = "not_payable"


def _pay_order(order: Order, timeout_express: str = orderstr.DEFAULT_TIMEOUT_EXPRESS) -> orderstr.PayOrder:
    return orderstr.PayOrder(order.order_num, order.total_cents, order.order_name, order.body, timeout_express)


def _signer(cfg: Settings, at: Optional[datetime]) -> Dict[str, Any]:
    """The builder core's signing arguments, certificate SNs included in certificate mode."""
    return {
        "app_id": cfg.app_id, "private_key": cfg.app_private_key, "notify_url": cfg.notify_url,
        "cert_sn": cfg.cert_sn, "aes_key": cfg.aes_key, "at": at,
    }


def _issue(
    store: OrderStore, request: PayRequest, at: Optional[datetime], sign: Optional[Callable[[orderstr.PayOrder], Any]] = None
) -> Tuple[Order, orderstr.PayOrder, Any]:
    """The core every channel shares: the order (a new row, or the stored unpaid one), what
    Alipay is asked to pay for it, and ``sign``'s result. A new row is written after signing;
    a stored one exists already, so either way no signed request is ever without its row."""
    if isinstance(request, StoredPurchase):
        order, pay_order = _stored_unpaid(store, request)
        return order, pay_order, sign(pay_order) if sign else None
    return _create_fresh(store, request, at, sign)


def _stored_unpaid(store: OrderStore, request: StoredPurchase) -> Tuple[Order, orderstr.PayOrder]:
    """The stored order ``request`` names, if it is the caller's and can still be paid.

    Its trade may not outlive the order's payment window (``RECONCILE_CLOSE_AFTER_SECONDS`` after
    ``orderDate``, when reconcile closes it), so ``timeout_express`` is what is left of it.
    """
    order = store.get(request.out_trade_no)
    if order is None or (request.user_id is not None and order.user_id != request.user_id):
        raise UnknownOrder(f"no order {request.out_trade_no}")
    if order.status == PAID:
        raise OrderNotPayable(f"order {order.order_num} is already paid")
    if order.status != UNPAID:
        raise OrderNotPayable(f"order {order.order_num} is closed; create a new order")
    if request.total_cents is not None and request.total_cents != order.total_cents:
        raise PriceRefused(
            f"total_amount {money.cents_to_yuan(request.total_cents)} differs from order {order.order_num} "
            f"({money.cents_to_yuan(order.total_cents)}); refresh the order and retry"
        )
    deadline = datetime.fromisoformat(order.order_date) + reconcile.Policy.from_env().close_after
    minutes = int((deadline - clock.now()).total_seconds() // 60)
    if minutes < 1:
        raise OrderNotPayable(f"order {order.order_num} is past its payment window; create a new order")
    return order, _pay_order(order, f"{minutes}m")


class ReplayedOrderClosed(OrderNotPayable):
    """An ``Idempotency-Key`` retry whose order was closed since: its orderStr can no longer be
    paid, and the key stands for that one order, so a new purchase needs a new key."""


@dataclass(frozen=True)
class Payment:
    """pay's answer: the order's number and what its channel's client needs (``replayed`` for a retry)."""

    order_num: str
    data: Dict[str, str]
    replayed: bool = False


def pay(
    store: OrderStore,
    cfg: Settings,
    new: PayRequest,
    channel: str = APP,
    *,
    keys: Optional[idempotency.IdempotencyStore] = None,
    key: Optional[str] = None,
    biz: Optional[Dict[str, str]] = None,
) -> Payment:
    """``start_pay``, at most once per ``Idempotency-Key`` when the caller sent one.

    Without a key (or without a key store configured) every request is a new order, as in seed 004.
    The channel is part of the request's fingerprint: the same key for another channel is a misuse.
    """
    def operation() -> Dict[str, str]:
        order, data = start_pay(store, cfg, new, channel, biz=biz)
        return {"orderNum": order.order_num, **data}

    if key is None or keys is None:
        if key is not None:
            log.warning("Idempotency-Key sent but IDEMPOTENCY_TABLE is not configured; ignoring it")
        result, replayed = operation(), False
    else:
        outcome = idempotency.run_once(
            keys, scope="pay", caller=new.user_id or "", key=key, request={**asdict(new), "channel": channel, **(biz or {})},
            operation=operation, ttl=cfg.idempotency_ttl,
        )
        result, replayed = dict(outcome.result), outcome.replayed
    order_num = result.pop("orderNum")
    if replayed:
        _check_replayable(store, order_num)
    logs.bind(order_num=order_num, total_amount=money.cents_to_yuan(new.total_cents) if new.total_cents is not None else None)
    telemetry.note(order_num=order_num, channel=channel)
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


def _create_fresh(
    store: OrderStore, new: NewOrder, at: Optional[datetime], sign: Optional[Callable[[orderstr.PayOrder], Any]] = None
) -> Tuple[Order, orderstr.PayOrder, Any]:
    for _ in range(CREATE_ATTEMPTS):
        order = _order(new, new_out_trade_no(at))
        pay_order = _pay_order(order)
        signed = sign(pay_order) if sign else None  # before the write: nothing to undo if it fails
        try:
            store.create(order)
        except OrderExists:
            log.warning("out_trade_no collision on %s; drawing another", order.order_num)
            continue
        return order, pay_order, signed
    raise RuntimeError(f"no free out_trade_no after {CREATE_ATTEMPTS} attempts")


# The metric's words for the state machine's outcomes. KEPT (WAIT_BUYER_PAY, a close after payment)
# is acknowledged without a change, as a duplicate is.
_NOTIFY_OUTCOME = {
    Outcome.APPLIED: telemetry.APPLIED, Outcome.ALREADY: telemetry.DUPLICATE, Outcome.KEPT: telemetry.DUPLICATE,
    Outcome.MISMATCH: telemetry.AMOUNT_MISMATCH, Outcome.NOT_FOUND: telemetry.UNKNOWN_ORDER,
}


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
        telemetry.note(outcome=exc.kind)
        return NotifyResult("fail", f"rejected: {exc.reason}")
    logs.bind(order_num=notify.out_trade_no, trade_status=notify.trade_status, total_amount=money.cents_to_yuan(notify.total_cents))
    telemetry.note(order_num=notify.out_trade_no)
    try:
        paid_at = clock.parse_alipay_time(notify.gmt_payment) if notify.gmt_payment else None
        transition = apply_trade_status(
            store, notify.out_trade_no, notify.trade_status, notify.total_cents, notify.trade_no, paid_at,
            refund=notify_refund(notify.params),
        )
    except (ValueError, NotifyRejected) as exc:  # unknown trade_status, malformed time or refund_fee: not acknowledged
        telemetry.note(outcome=exc.kind if isinstance(exc, NotifyRejected) else telemetry.MALFORMED)
        return NotifyResult("fail", f"rejected: {exc}", notify)
    outcome = transition.outcome
    telemetry.note(outcome=_NOTIFY_OUTCOME[outcome])
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
