"""The emulator's merchant console (商家平台): what a shop's staff do at Alipay, outside this backend.

``POST /sandbox/console/refund`` refunds a paid trade as the console's 退款 button does: the
money goes back at Alipay, Alipay notifies the trade's notify_url with the fields it sends for a
refund (``refund_fee`` = the trade's refunded total, ``gmt_refund``, ``out_biz_no``, and
``TRADE_CLOSED`` with ``gmt_payment`` and ``gmt_close`` once all of it is refunded), and the
backend learns of it only from that notify (or reconcile, or the bill).
"""
from __future__ import annotations

import itertools
import json
from typing import Any, Dict, Mapping, Optional, Tuple

from shared.domain import clock, money

from local.sandbox import GatewayError, Sandbox, business, find_trade, invalid, make_refund, refunds_of

_SERIAL = itertools.count(1)


def console_out_biz_no() -> str:
    """The refund number the console makes up (the merchant typed none): date, time, serial."""
    return f"CONSOLE{clock.now().strftime('%Y%m%d%H%M%S')}{next(_SERIAL):06d}"


def console_refund(sandbox: Sandbox, args: Mapping[str, Any]) -> Dict[str, Any]:
    """Refund ``refund_amount`` (yuan; default: all that is left) of ``out_trade_no``;
    ``out_request_no`` optional. Returns Alipay's refund answer fields, or raises ``GatewayError``."""
    out_trade_no = args.get("out_trade_no")
    if not isinstance(out_trade_no, str) or not out_trade_no:
        raise invalid("isv.missing-out-trade-no", "out_trade_no 不能为空")
    amount: Optional[str] = args.get("refund_amount")
    with sandbox.ledger.transaction():
        trade = find_trade(sandbox, {"out_trade_no": out_trade_no})
        if amount in (None, ""):
            refunded = sum(money.yuan_to_cents(r["refund_amount"]) for r in refunds_of(trade).values())
            cents = money.yuan_to_cents(trade.total_amount) - refunded
        else:
            try:
                cents = money.yuan_to_cents(str(amount), field="refund_amount")
            except money.InvalidAmount:
                raise invalid("isv.invalid-refund-amount", "refund_amount 格式错误") from None
        if cents <= 0:
            raise business("ACQ.TRADE_HAS_FINISHED", "交易已全额退款")
        return make_refund(sandbox, {"out_trade_no": out_trade_no}, cents, args.get("out_request_no") or console_out_biz_no())


def post_refund(sandbox: Sandbox, body: Optional[bytes]) -> Tuple[int, Dict[str, Any]]:
    """``POST /sandbox/console/refund`` with a JSON object: (HTTP status, answer)."""
    try:
        args = json.loads(body or b"{}")
    except ValueError:
        return 400, {"message": "the body must be a JSON object"}
    if not isinstance(args, dict):
        return 400, {"message": "the body must be a JSON object"}
    try:
        return 200, console_refund(sandbox, args)
    except GatewayError as exc:
        return (404 if exc.sub_code == "ACQ.TRADE_NOT_EXIST" else 409 if exc.code == "40004" else 400), exc.fields()
