"""The shop a person clicks through on ``make run``: ``GET /`` and the order pages under ``/checkout/``.

It plays the shop's own app and web pages, nothing more: it buys through ``POST /pay`` over HTTP
as an app would, refunds through the refund function as ``make invoke`` does, and reads the
order from the table, the trade and its notify deliveries from the emulator (the same record
``GET /sandbox/trades/{outTradeNo}`` serves). Local stack only: it is never deployed.

- ``GET /``: the products (the ``PRODUCT_CATALOG`` pay prices from, else a few demo products
  whose price the client names) and the channels of ``POST /pay``, and the recent orders;
- ``POST /checkout``: pay, then the order page;
- ``GET /checkout/orders/{outTradeNo}``: how to pay it for its channel (the cashier link, the QR
  code, the orderStr and the mobile SDK's buttons), and its timeline;
- ``POST /checkout/orders/{outTradeNo}/app-pay`` and ``…/refund``: the SDK's play and a refund.
"""
from __future__ import annotations

import json
import logging
import os
import secrets
import threading
import urllib.error
import urllib.request
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple
from urllib.parse import parse_qsl, quote, urlencode

from shared import config
from shared.domain import clock, money, validation
from shared.domain.catalog import load_catalog
from shared.domain.orders import CLOSED, PAID, UNPAID, Order
from shared.aws.repository import order_repository

from local.cashier import form_fields
from local.pages import esc, form, page, redirect, table

log = logging.getLogger(__name__)

Reply = Tuple[int, str, bytes, Dict[str, str]]
HTML = "text/html; charset=utf-8"
ORDERS = "/checkout/orders/"
RECENT = 100  # orders the shop remembers (their pay answers: orderStr, payUrl, qrCode)
STATUS_TEXT = {UNPAID: "unpaid 待支付", PAID: "paid 已支付", CLOSED: "closed 已关闭"}
SDK_OUTCOMES = (
    ("success", "Pay in Alipay's app (9000)", ""),
    ("closed", "Cancel in the app (6001)", "secondary"),
    ("drop", "Pay, but the notify is lost", "secondary"),
)
# A channel's own inputs, sent to POST /pay when that channel is picked, with the emulator's buyer as
# the default: shown only for channels pay lists (validation.CHANNELS), so they appear with them.
CHANNEL_INPUTS: Dict[str, Tuple[Tuple[str, str, str], ...]] = {
    "jsapi": (("buyerId", "buyer_id (jsapi)", "2088102177846880"),),
    "barcode": (("authCode", "auth_code: the buyer's payment code (barcode)", "284567891234567890"),),
}
DEMO_PRODUCTS = (  # without PRODUCT_CATALOG, pay takes the client's amount
    ("PROD_1", "数据恢复产品 A", "198.01"),
    ("PROD_COFFEE", "Coffee 咖啡", "0.01"),
    ("PROD_TEA", "Tea <&> \"quoted\"", "12.50"),
)


@dataclass(frozen=True)
class Product:
    product_id: str
    name: str
    price: str  # yuan, as the catalog writes it


def products(env: Optional[Dict[str, str]] = None) -> Tuple[List[Product], bool]:
    """The products to offer and whether pay prices them itself: the catalog pay reads
    (``PRODUCT_CATALOG``, resolved and validated as shared/config.py does), else the demo list."""
    env = os.environ if env is None else env
    raw = (env.get(config.PRODUCT_CATALOG) or "").strip()
    if not raw:
        return [Product(*row) for row in DEMO_PRODUCTS], False
    path = Path(config.CODE_ROOT, raw)
    prices = load_catalog(path).prices  # the same validation pay applies
    names = json.loads(path.read_text(encoding="utf-8"))["products"]
    found = [
        Product(pid, str((names.get(pid) or {}).get("name") or pid), money.cents_to_yuan(cents))
        for pid, cents in prices.items()
    ]
    return found, True


@dataclass
class Purchase:
    """What the shop's app holds for one order: the channel and pay's answer."""

    channel: str
    data: Dict[str, Any]
    sdk_results: List[Dict[str, str]] = field(default_factory=list)


class Shop:
    """The checkout of one local stack. ``base_url`` is the stack itself (pay, invoke, events)."""

    def __init__(self, base_url: str, sandbox_getter: Callable[[], Any]) -> None:
        self.base_url = base_url
        self._sandbox = sandbox_getter
        self._lock = threading.Lock()
        self.recent: "OrderedDict[str, Purchase]" = OrderedDict()

    # --- routing -------------------------------------------------------------------------------

    def handle(self, method: str, path: str, query: str, body: bytes) -> Optional[Reply]:
        """The reply for a checkout path, or None when the path is not the checkout's. A failure
        of ours (a bad catalog file, DynamoDB) is a 500 page naming it, never a dropped connection."""
        try:
            return self._route(method, path, query, body)
        except Exception as exc:  # noqa: BLE001 - the page says what broke; the log has the traceback
            log.exception("checkout %s %s failed", method, path)
            return html_reply(500, page("Checkout", f'<h1 class="bad">The checkout failed: {esc(type(exc).__name__)}: {esc(exc)}</h1>', bar=self.bar()))

    def _route(self, method: str, path: str, query: str, body: bytes) -> Optional[Reply]:
        if path == "/favicon.ico":
            return 204, "image/x-icon", b"", {}
        if path == "/" and method == "GET":
            return self.home(query)
        if path == "/checkout" and method == "POST":
            return self.buy(body)
        if path.startswith(ORDERS):
            order_num, _, action = path[len(ORDERS):].partition("/")
            if not validation.OUT_TRADE_NO_RE.match(order_num):
                return html_reply(404, page("Not found", "<h1>No such order</h1>"))
            if method == "GET" and not action:
                return self.order_page(order_num, query)
            if method == "POST" and action == "refund":
                return self.refund(order_num, body)
            if method == "POST" and action == "app-pay":
                return self.app_pay(order_num, body)
        return None

    # --- pages ---------------------------------------------------------------------------------

    def home(self, query: str) -> Reply:
        offered, priced = products()
        choices = "".join(
            f'<label><input type="radio" name="productId" value="{esc(p.product_id)}"{" checked" if i == 0 else ""}> '
            f"{esc(p.name)} · ¥{esc(p.price)}</label><br>"
            for i, p in enumerate(offered)
        )
        channels = "".join(
            f'<label><input type="radio" name="channel" value="{esc(c)}"{" checked" if c == validation.PAGE else ""}> {esc(c)}</label>'
            for c in validation.CHANNELS
        )
        where = "prices from PRODUCT_CATALOG (pay checks them)" if priced else "demo products: pay takes the amount the client sends"
        body = (
            "<h1>Checkout 收银台</h1>"
            f'<form method="post" action="/checkout" id="checkout"><fieldset><legend>Product</legend>{choices}'
            f'<p class="note">{esc(where)}</p></fieldset>'
            f"<fieldset><legend>Channel</legend>{channels}</fieldset>"
            + channel_inputs()
            + '<p><label>userId <input name="userId" value="USER_1" maxlength="64"></label></p>'
            '<button type="submit" id="pay">Pay 支付</button></form>'
            + self.recent_table()
        )
        return html_reply(200, page("Checkout", body, bar=self.bar()))

    def recent_table(self) -> str:
        with self._lock:
            recent = list(reversed(self.recent.items()))[:20]
        if not recent:
            return ""
        rows = [(f'<a href="{esc(ORDERS + quote(no))}">{esc(no)}</a>', esc(p.channel)) for no, p in recent]
        return "<h2>Recent orders</h2>" + table(("order", "channel"), rows, id_="recent")

    def bar(self) -> str:
        return '<a href="/">alipay-app-pay · local checkout</a> · emulated Alipay, moto DynamoDB, nothing leaves this machine'

    def buy(self, body: bytes) -> Reply:
        fields = form_fields(body)
        if fields is None:
            return html_reply(400, page("Checkout", '<h1 class="bad">The checkout form is malformed</h1>'))
        offered, _ = products()
        product = next((p for p in offered if p.product_id == fields.get("productId")), None)
        if product is None:
            return html_reply(400, page("Checkout", '<h1 class="bad">Pick a product from the list</h1>'))
        request = pay_request(fields, product)
        status, reply = self.call("POST", "/pay", request)
        if status != 200 or not isinstance(reply, dict) or not isinstance(reply.get("data"), dict):
            message = reply.get("msg") if isinstance(reply, dict) else reply
            return html_reply(status if status >= 400 else 502, page(
                "Payment refused", f'<h1 class="bad">POST /pay answered {esc(status)}</h1><p id="error">{esc(message)}</p>'
                '<p><a href="/">Back to the checkout</a></p>', bar=self.bar(),
            ))
        order_num = reply["data"]["outTradeNo"]
        self.remember(order_num, Purchase(request["channel"] or validation.APP, reply["data"]))
        return redirect(ORDERS + quote(order_num))

    def remember(self, order_num: str, purchase: Purchase) -> None:
        with self._lock:
            self.recent[order_num] = purchase
            while len(self.recent) > RECENT:
                self.recent.popitem(last=False)

    def order_page(self, order_num: str, query: str) -> Reply:
        order = order_repository(os.environ["ORDER_TABLE"]).get(order_num)
        if order is None:
            return html_reply(404, page("Not found", f"<h1>No order {esc(order_num)}</h1>", bar=self.bar()))
        with self._lock:
            purchase = self.recent.get(order_num)
        trade = self._sandbox().ledger.snapshot(order_num)
        events = self.events(order_num)
        flash = dict(parse_qsl(query[:2048])).get("msg")
        body = (
            f"<h1>{esc(order.order_name)}</h1>"
            f'<p class="amount">¥{esc(money.cents_to_yuan(order.total_cents))}</p>'
            + table(("", ""), [
                ("out_trade_no", f'<code id="order-num">{esc(order.order_num)}</code>'),
                ("status", f'<b id="order-status">{esc(STATUS_TEXT.get(order.status, order.status))}</b>'),
                ("channel", esc(purchase.channel if purchase else "?")),
                ("userId · productId", f"{esc(order.user_id)} · {esc(order.product_id)}"),
                ("refunded", f"¥{esc(money.cents_to_yuan(order.refunded_cents))}" if order.refunds else "—"),
            ])
            + (f'<p id="flash" class="note">{esc(flash)}</p>' if flash else "")
            + f'<p><a class="button secondary" id="refresh" href="{esc(ORDERS + quote(order_num))}">Refresh</a></p>'
            + (self.how_to_pay(order, purchase) if order.status == UNPAID and purchase else "")
            + (self.refund_form(order) if order.status == PAID else "")
            + "<h2>Timeline</h2>"
            + table(("time (Asia/Shanghai)", "where", "what"), timeline(order, trade, events), id_="timeline")
            + f'<p class="note">Raw: <a href="/orders/{esc(quote(order_num))}">GET /orders/…</a> · '
            f'<a href="/sandbox/trades/{esc(quote(order_num))}">the emulator\'s trade</a></p>'
        )
        return html_reply(200, page(f"Order {order_num}", body, bar=self.bar()))

    def how_to_pay(self, order: Order, purchase: Purchase) -> str:
        view = CHANNEL_VIEWS.get(purchase.channel, generic_view)
        return "<h2>Pay</h2>" + view(order, purchase)

    def refund_form(self, order: Order) -> str:
        left = order.total_cents - order.refunded_cents
        if left <= 0:
            return ""
        return (
            f'<h2>Refund</h2><form method="post" action="{esc(ORDERS + quote(order.order_num) + "/refund")}" id="refund">'
            f'<label>amount ¥ <input name="amount" id="refund-amount" value="{esc(money.cents_to_yuan(left))}" size="10"></label>'
            '<label>reason <input name="reason" maxlength="256"></label>'
            '<button type="submit" id="refund-button">Refund 退款</button></form>'
            '<p class="note">Calls the refund function as <code>make invoke FUNCTION=refund</code> does.</p>'
        )

    # --- actions -------------------------------------------------------------------------------

    def app_pay(self, order_num: str, body: bytes) -> Reply:
        """The app hands the orderStr to Alipay's SDK (the emulator's ``/sandbox/app-pay``)."""
        fields = form_fields(body)
        with self._lock:
            purchase = self.recent.get(order_num)
        if fields is None or purchase is None or "orderStr" not in purchase.data:
            return html_reply(400, page("App pay", '<h1 class="bad">No orderStr for this order</h1>', bar=self.bar()))
        outcome = fields.get("action", "success")
        status, result = self.call("POST", f"/sandbox/app-pay?outcome={quote(outcome)}", raw=purchase.data["orderStr"].encode())
        result = result if isinstance(result, dict) else {"resultStatus": str(status), "memo": str(result)[:200]}
        purchase.sdk_results.append(result)
        message = f"Alipay's SDK answered resultStatus {result.get('resultStatus')} {result.get('memo') or ''}".strip()
        return redirect(ORDERS + quote(order_num) + "?" + urlencode({"msg": message}))

    def refund(self, order_num: str, body: bytes) -> Reply:
        fields = form_fields(body) or {}
        try:
            cents = money.yuan_to_cents(fields.get("amount", ""), field="amount")
        except money.InvalidAmount as exc:
            return redirect(ORDERS + quote(order_num) + "?" + urlencode({"msg": f"refund not sent: {exc}"}))
        event = {"outTradeNo": order_num, "outRequestNo": f"R{clock.epoch_ms()}{secrets.token_hex(3)}", "refundAmount": cents}
        if fields.get("reason"):
            event["refundReason"] = fields["reason"]
        status, result = self.call("POST", "/local/invoke/refund", event)
        if isinstance(result, dict) and "code" in result:
            message = f"refund {event['outRequestNo']}: {result.get('code')} {result.get('msg') or ''}"
        else:
            message = f"refund {event['outRequestNo']}: the function failed ({status}: {str(result)[:200]})"
        return redirect(ORDERS + quote(order_num) + "?" + urlencode({"msg": message}))

    def events(self, order_num: str) -> List[Dict[str, Any]]:
        """The order events the stage's bus delivered for this order (``GET /local/events``); none
        when the stack runs without the local event pipeline."""
        status, reply = self.call("GET", "/local/events?" + urlencode({"outTradeNo": order_num}))
        found = reply.get("events") if status == 200 and isinstance(reply, dict) else None
        return [e for e in found if isinstance(e, dict)] if isinstance(found, list) else []

    def call(self, method: str, path: str, payload: Any = None, raw: Optional[bytes] = None) -> Tuple[int, Any]:
        """One HTTP call to this stack, as the shop's app makes it: (status, JSON or text)."""
        data = raw if raw is not None else (json.dumps(payload).encode() if payload is not None else None)
        request = urllib.request.Request(
            self.base_url + path, data=data, method=method,
            headers={"Content-Type": "application/json" if raw is None else "text/plain; charset=utf-8"},
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as reply:
                status, text = reply.status, reply.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            status, text = exc.code, exc.read().decode("utf-8", "replace")
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text


def channel_inputs() -> str:
    """The inputs of the channels pay lists that take their own fields (jsapi's buyer, barcode's code)."""
    inputs = "".join(
        f'<p><label>{esc(label)} <input name="{esc(name)}" id="input-{esc(name)}" value="{esc(default)}" maxlength="128"></label></p>'
        for channel in validation.CHANNELS for name, label, default in CHANNEL_INPUTS.get(channel, ())
    )
    return f"<fieldset><legend>Channel fields</legend>{inputs}</fieldset>" if inputs else ""


def pay_request(fields: Dict[str, str], product: Product) -> Dict[str, str]:
    """The JSON body of POST /pay for the checkout form: the product, and the chosen channel's inputs."""
    channel = fields.get("channel", "")
    request = {
        "productId": product.product_id, "userId": fields.get("userId", ""), "orderName": product.name,
        "total_amount": product.price, "channel": channel,
    }
    for name, _, _ in CHANNEL_INPUTS.get(channel, ()):
        if fields.get(name):
            request[name] = fields[name]
    return request


# --- how to pay, per channel (jsapi and barcode get the generic view until they have their own) --

def cashier_view(order: Order, purchase: Purchase) -> str:
    return (
        f'<p><a class="button" id="open-cashier" href="{esc(purchase.data.get("payUrl", ""))}">Open Alipay\'s cashier 去支付宝付款</a></p>'
        '<p class="note">payUrl: the signed request (GET). The cashier lets the buyer pay, cancel or close.</p>'
    )


def qr_view(order: Order, purchase: Purchase) -> str:
    import segno  # noqa: PLC0415 - only the precreate page needs it

    code = str(purchase.data.get("qrCode", ""))
    png = segno.make(code, error="m").png_data_uri(scale=6, border=4)
    return (
        f'<p><img id="qr" alt="QR code" src="{esc(png)}"></p><p><code id="qr-text">{esc(code)}</code></p>'
        f'<p><a class="button" id="scan" href="/sandbox/scan?{esc(urlencode({"qr_code": code}))}">'
        "Scan it with the emulator's phone 扫码</a></p>"
    )


def app_view(order: Order, purchase: Purchase) -> str:
    order_str = str(purchase.data.get("orderStr", ""))
    played = "".join(f"<li>{esc(r.get('resultStatus'))} {esc(r.get('memo'))}</li>" for r in purchase.sdk_results)
    return (
        f'<p class="note">orderStr, as the app hands it to Alipay\'s SDK (<code>payV2</code>):</p>'
        f'<textarea id="order-str" rows="6" readonly>{esc(order_str)}</textarea>'
        + form(ORDERS + quote(order.order_num) + "/app-pay", {}, SDK_OUTCOMES, id_="sdk")
        + (f"<ul id=\"sdk-results\">{played}</ul>" if played else "")
    )


def generic_view(order: Order, purchase: Purchase) -> str:
    rows = [(esc(k), f"<code>{esc(v)}</code>") for k, v in purchase.data.items()]
    return '<p class="note">What POST /pay answered for this channel:</p>' + table(("field", "value"), rows)


CHANNEL_VIEWS: Dict[str, Callable[[Order, Purchase], str]] = {
    validation.APP: app_view, validation.PAGE: cashier_view, validation.WAP: cashier_view, validation.PRECREATE: qr_view,
}


# --- the timeline ----------------------------------------------------------------------------

def shanghai(text: Optional[str]) -> str:
    """ISO 8601 (the table) or Alipay's ``yyyy-MM-dd HH:mm:ss`` (the emulator) as Shanghai time."""
    if not text:
        return ""
    try:
        at = datetime.fromisoformat(text) if "T" in text else clock.parse_alipay_time(text[:19])
    except ValueError:
        return text
    return clock.alipay_timestamp(at)


def timeline(order: Order, trade: Optional[Dict[str, Any]], events: Sequence[Dict[str, Any]] = ()) -> List[Sequence[str]]:
    """Every step of the order, oldest first: the shop's table, Alipay's trade, its notifies, and
    the order events published on the bus (at their EventBridge ``time``)."""
    rows: List[Tuple[str, int, str, str]] = [(shanghai(order.order_date), 0, "shop", "order created (POST /pay), status 0")]
    if trade:
        rows.append((shanghai(trade.get("gmt_create")), 1, "Alipay", "trade opened"))
        for event in trade.get("extra", {}).get("events", []):
            looked = event["what"].startswith("alipay.trade.query")  # locally, only reconcile asks
            rows.append((shanghai(event["at"]), 2, "Alipay", ("reconcile looked: " if looked else "") + event["what"]))
        for d in trade.get("deliveries", []):
            what = f"notify {d.get('trade_status') or ''}{' refund_fee ' + d['refund_fee'] if d.get('refund_fee') else ''}"
            answer = f"{d['answer']} (HTTP {d['http_status']})" if d.get("http_status") else d["answer"]
            rows.append((shanghai(d["at"]), 3, "notify", f"{what} · attempt {d['attempt']} → answered {answer}"))
    if order.pay_date:
        rows.append((shanghai(order.pay_date), 4, "shop", f"paid (trade_no {order.trade_no})"))
    for request_no, refund in order.refunds.items():
        rows.append((shanghai(refund.requested_at), 5, "shop", f"refund {request_no} requested ¥{money.cents_to_yuan(refund.cents)}"))
        if refund.refunded_at:
            rows.append((shanghai(refund.refunded_at), 6, "shop", f"refund {request_no} {refund.status.lower()}"))
    if order.status == CLOSED:
        rows.append(("", 7, "shop", "closed (status 2)"))
    for event in events:
        detail = event.get("detail") if isinstance(event.get("detail"), dict) else {}
        refund = f" ¥{money.cents_to_yuan(detail['refundAmount'])}" if isinstance(detail.get("refundAmount"), int) else ""
        what = f"{event.get('detail-type')}{refund} published (eventId {str(detail.get('eventId', ''))[:12]}…)"
        rows.append((shanghai(str(event.get("time") or detail.get("time") or "")), 8, "events", what))
    rows.sort(key=lambda row: (row[0] or "9", row[1]))
    return [(esc(at), esc(where), esc(what)) for at, _, where, what in rows]


def html_reply(status: int, body: bytes) -> Reply:
    return status, HTML, body, {"Cache-Control": "no-store"}
