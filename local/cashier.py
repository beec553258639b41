"""The buyer's pages at the emulated Alipay: the page/wap cashier and the QR code scan page.

Alipay's cashier shows the order and waits for the buyer; so does this one. ``page_pay`` and
``wap_pay`` (gateway methods) open the trade and show it with three choices, posted back to
``POST /sandbox/cashier``:

- **pay**: the trade is paid, notified, and the browser goes to ``return_url`` with Alipay's
  signed sync return (``<method>.return``, signed like a notify) — or sees a receipt without one;
- **cancel**: the buyer leaves without paying. Nothing changes at Alipay: the trade stays
  ``WAIT_BUYER_PAY`` until it times out (the shop's reconcile closes it), no notify, no signed
  return — Alipay only signs a return for a payment. The page links back to the shop;
- **close**: the trade is closed at Alipay (as when it times out at the cashier) and
  ``TRADE_CLOSED`` is notified.

``GET /sandbox/scan?qr_code=…`` is the buyer's phone after scanning a precreate QR code (by the
code's text, as a phone reads it, or ``out_trade_no``): the same order view, with pay or close.

Each step is noted in the trade's events (``Ledger.record_event``) for the checkout's timeline.
A cashier page carries a per-trade token, so a form cannot act on a trade it was not shown.
"""
from __future__ import annotations

import secrets
from typing import Dict, Optional, Tuple
from urllib.parse import parse_qsl, urlencode, urlsplit

from shared.domain import clock
from shared.alipay import orderstr

from local import alipay, charset
from local.ledger import TRADE_CLOSED, TRADE_SUCCESS, WAIT_BUYER_PAY, Trade
from local.pages import esc, form, page, table
from local.sandbox import QR_PREFIX, GatewayRequest, RawReply, Sandbox, gateway_method, scan

Reply = Tuple[int, str, bytes]
HTML = "text/html; charset=utf-8"
CASHIER_PATH = "/sandbox/cashier"
SCAN_PATH = "/sandbox/scan/choice"
MAX_FORM = 4096
ACTIONS = {"pay": TRADE_SUCCESS, "close": TRADE_CLOSED, "cancel": None}


@gateway_method(orderstr.PAGE_PAY_METHOD)
def page_pay(sandbox: Sandbox, request: GatewayRequest) -> RawReply:
    return open_cashier(sandbox, request, orderstr.PAGE_PAY_PRODUCT_CODE)


@gateway_method(orderstr.WAP_PAY_METHOD)
def wap_pay(sandbox: Sandbox, request: GatewayRequest) -> RawReply:
    return open_cashier(sandbox, request, orderstr.WAP_PAY_PRODUCT_CODE)


def open_cashier(sandbox: Sandbox, request: GatewayRequest, product_code: str) -> RawReply:
    """Open (or reopen) the unpaid trade and show it; nothing is paid until the buyer says so."""
    with sandbox.ledger.transaction():
        trade = sandbox.open_trade(request, product_code)
        visit = {
            "method": request.method, "charset": request.params["charset"],
            "return_url": request.params.get("return_url") or "", "quit_url": str(request.biz.get("quit_url") or ""),
            "token": secrets.token_urlsafe(16),
        }
        sandbox.ledger.update(trade.out_trade_no, lambda t: t.extra.__setitem__("cashier", visit))
        sandbox.ledger.record_event(trade.out_trade_no, f"cashier opened ({request.method})")
    choices = [("pay", "确认付款 Pay", ""), ("cancel", "取消 Cancel", "secondary"), ("close", "关闭交易 Close the trade", "danger")]
    body = (
        order_view(trade, "收银台 Cashier")
        + form(CASHIER_PATH, {"out_trade_no": trade.out_trade_no, "token": visit["token"]}, choices, id_="cashier")
        + '<p class="note">Cancel leaves without paying (the trade stays open until it times out); '
        "close ends the trade at Alipay and notifies the shop.</p>"
    )
    return RawReply(200, HTML, page(f"支付宝收银台 {trade.out_trade_no}", body, bar="支付宝 Alipay · local emulator"))


def order_view(trade: Trade, heading: str) -> str:
    rows = [
        ("商品 Subject", esc(trade.subject)), ("订单号 out_trade_no", f'<code id="out-trade-no">{esc(trade.out_trade_no)}</code>'),
        ("交易号 trade_no", esc(trade.trade_no)), ("付款账户 Buyer", esc(trade.buyer_logon_id)),
        ("状态 Status", f'<span id="trade-status">{esc(trade.status)}</span>'),
    ]
    return (
        f"<h1>{esc(heading)}</h1><p class=\"amount\" id=\"amount\">¥{esc(trade.total_amount)}</p>"
        + table(("", ""), rows)
    )


def act(sandbox: Sandbox, body: bytes) -> Reply:
    """``POST /sandbox/cashier``: the buyer's choice (``action``) for ``out_trade_no``."""
    fields = form_fields(body)
    if fields is None:
        return error(400, "the cashier form is malformed")
    action, out_trade_no = fields.get("action", ""), fields.get("out_trade_no", "")
    if action not in ACTIONS:
        return error(400, "action must be pay, cancel or close")
    with sandbox.ledger.transaction():
        trade = sandbox.ledger.find(out_trade_no)
        visit = trade.extra.get("cashier") if trade is not None else None
        if visit is None or not secrets.compare_digest(visit["token"], fields.get("token", "")):
            return error(404, "no cashier was opened for this trade")
        if trade.status != WAIT_BUYER_PAY:
            return error(409, f"the trade is already {trade.status}")
        if ACTIONS[action] is not None:
            sandbox.settle(out_trade_no, ACTIONS[action])
        sandbox.ledger.record_event(out_trade_no, f"cashier: buyer chose {action}")
    if action != "cancel":
        sandbox.notify(out_trade_no)
    trade = sandbox.ledger.find(out_trade_no)
    if action == "pay":
        return paid_page(sandbox, trade, visit)
    back = visit["quit_url"] or shop_url(visit["return_url"])
    title = "已取消付款 You left without paying" if action == "cancel" else "交易已关闭 The trade is closed"
    link = f'<p><a class="button" id="back-to-shop" href="{esc(back)}">返回商户 Back to the shop</a></p>' if back else ""
    return 200, HTML, page(title, order_view(trade, title) + link, bar="支付宝 Alipay · local emulator")


def paid_page(sandbox: Sandbox, trade: Trade, visit: Dict[str, str]) -> Reply:
    """The receipt; with a return_url, an immediate redirect to it with the signed sync return."""
    title = f"支付宝（本地模拟）: 已支付 ¥{trade.total_amount} — {trade.out_trade_no}"
    if not visit["return_url"]:
        return 200, HTML, page("paid", f"<h1>{esc(title)}</h1>")
    back = sync_return(sandbox, trade, visit["method"], visit["charset"])
    query = urlencode(back, encoding=charset.codec(visit["charset"]))  # escapes in the request's charset
    target = visit["return_url"] + ("&" if "?" in visit["return_url"] else "?") + query
    refresh = f'<meta http-equiv="refresh" content="0;url={esc(target)}">'
    return 200, HTML, page("paid", f'<h1>{esc(title)}</h1><a href="{esc(target)}">返回商户</a>', head=refresh)


def sync_return(sandbox: Sandbox, trade: Trade, method: str, charset: str) -> Dict[str, str]:
    """The parameters Alipay appends to return_url after page/wap pay, signed (sign_type excluded)."""
    params = {
        "charset": charset, "out_trade_no": trade.out_trade_no, "method": f"{method}.return",
        "total_amount": trade.total_amount, "trade_no": trade.trade_no, "auth_app_id": sandbox.app_id,
        "version": "1.0", "app_id": sandbox.app_id, "seller_id": sandbox.seller_id, "timestamp": clock.alipay_timestamp(),
    }
    return alipay.sign_notify(params, sandbox.alipay_private_key)


def shop_url(return_url: str) -> str:
    """Where "back to the shop" goes without a quit_url: the return_url's site root."""
    parts = urlsplit(return_url)
    return f"{parts.scheme}://{parts.netloc}/" if parts.scheme in ("http", "https") and parts.netloc else ""


# --- the buyer's phone after scanning a precreate QR code ------------------------------------

def scan_page(sandbox: Sandbox, query: str) -> Reply:
    """``GET /sandbox/scan?qr_code=…`` (or ``?out_trade_no=…``): the scanned trade, pay or close."""
    args = dict(parse_qsl(query[:MAX_FORM], keep_blank_values=True))
    trade = scanned_trade(sandbox, args)
    if trade is None:
        return error(404, "no trade for this QR code")
    if trade.status != WAIT_BUYER_PAY:
        return 200, HTML, page("已扫码", order_view(trade, "这个二维码已失效 This code no longer pays"))
    choices = [("success", "确认付款 Pay", ""), ("closed", "关闭交易 Close the trade", "danger")]
    body = order_view(trade, "扫码付款 Scan to pay") + form(SCAN_PATH, {"out_trade_no": trade.out_trade_no}, choices, id_="scan")
    return 200, HTML, page(f"扫码付款 {trade.out_trade_no}", body, bar="支付宝 Alipay · local emulator (the buyer's phone)")


def scanned_trade(sandbox: Sandbox, args: Dict[str, str]) -> Optional[Trade]:
    code = args.get("qr_code", "")
    if code:
        return sandbox.ledger.find(trade_no=code[len(QR_PREFIX):]) if code.startswith(QR_PREFIX) else None
    return sandbox.ledger.find(args.get("out_trade_no") or None)


def scan_act(sandbox: Sandbox, body: bytes) -> Reply:
    """The scan page's form: ``local.sandbox.scan`` with the buyer's choice, then the result."""
    fields = form_fields(body)
    if fields is None or fields.get("action") not in ("success", "closed"):
        return error(400, "the scan form is malformed")
    trade = scan(sandbox, fields.get("out_trade_no", ""), fields["action"])
    if trade is None:
        return error(409, "no unpaid trade with that out_trade_no")
    sandbox.ledger.record_event(trade["out_trade_no"], f"scanned: buyer chose {'pay' if fields['action'] == 'success' else 'close'}")
    done = sandbox.ledger.find(trade["out_trade_no"])
    title = "付款成功 Paid" if done.status == TRADE_SUCCESS else "交易已关闭 The trade is closed"
    return 200, HTML, page(title, order_view(done, title), bar="支付宝 Alipay · local emulator (the buyer's phone)")


def form_fields(body: bytes) -> Optional[Dict[str, str]]:
    """A small url-encoded form; None when it is too large, not UTF-8 or repeats a field."""
    if len(body) > MAX_FORM:
        return None
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, errors="strict")
    except (UnicodeDecodeError, ValueError):
        return None
    fields = dict(pairs)
    return fields if len(fields) == len(pairs) else None


def error(status: int, message: str) -> Reply:
    return status, HTML, page("支付宝 Alipay", f'<h1 class="bad">{esc(message)}</h1>', bar="支付宝 Alipay · local emulator")
