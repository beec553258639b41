"""The emulator's in-app and till products: ``alipay.trade.create`` (JSAPI), ``alipay.trade.pay``
(barcode) and ``alipay.trade.cancel``, registered into local/sandbox.py's ``GATEWAY_METHODS``.

Payment codes force each path of a till, as a tester needs them (Alipay's codes are 16-24 digits
starting 25-30):

- ending ``0001``: the buyer must confirm on the phone (10003), and does after
  ``Sandbox.buyer_confirms_after`` seconds (the trade is then paid and notified);
- ending ``0002``: the buyer never confirms, so the till's flow ends in a cancel;
- ending ``0003``: refused as an invalid code (40004 ``ACQ.PAYMENT_AUTH_CODE_INVALID``), no trade;
- any other valid code pays at once (10000).
"""
from __future__ import annotations

import re
import threading
from typing import Any, Dict

from shared.domain import clock, money

from local.ledger import TRADE_CLOSED, TRADE_SUCCESS, WAIT_BUYER_PAY
from local.sandbox import GatewayError, GatewayRequest, Sandbox, business, find_trade, gateway_method, invalid, refunds_of

CREATE_PRODUCT_CODES = ("JSAPI_PAY", "FACE_TO_FACE_PAYMENT")  # create's default is FACE_TO_FACE_PAYMENT
PAY_PRODUCT_CODE = "FACE_TO_FACE_PAYMENT"
AUTH_CODE_RE = re.compile(r"(2[5-9]|30)[0-9]{14,22}")
BUYER_ID_RE = re.compile(r"2088[0-9]{12}")
OPEN_ID_RE = re.compile(r"[0-9A-Za-z_-]{10,128}")
CONFIRMS_LATER, NEVER_CONFIRMS, INVALID_CODE = "0001", "0002", "0003"
WAIT_BUYER_CODE = "10003"


def paid_fields(sandbox: Sandbox, trade) -> Dict[str, Any]:
    return {
        "trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no, "buyer_logon_id": trade.buyer_logon_id,
        "total_amount": trade.total_amount, "receipt_amount": trade.total_amount, "buyer_pay_amount": trade.total_amount,
        "gmt_payment": trade.gmt_payment, "buyer_user_id": trade.buyer_id,
    }


@gateway_method("alipay.trade.create")
def trade_create(sandbox: Sandbox, request: GatewayRequest) -> Dict[str, Any]:
    """An unpaid trade for a buyer inside Alipay's app; ``my.tradePay({tradeNO})`` pays it."""
    biz = dict(request.biz)
    product_code = biz.setdefault("product_code", "FACE_TO_FACE_PAYMENT")
    if product_code not in CREATE_PRODUCT_CODES:
        raise invalid("isv.invalid-product-code", f"product_code 须为 {' 或 '.join(CREATE_PRODUCT_CODES)}")
    buyer_id, open_id = biz.get("buyer_id"), biz.get("buyer_open_id")
    if not buyer_id and not open_id:
        raise invalid("isv.missing-buyer-id", "buyer_id 和 buyer_open_id 不能同时为空")
    if buyer_id and not (isinstance(buyer_id, str) and BUYER_ID_RE.fullmatch(buyer_id)):
        raise invalid("isv.invalid-buyer-id", "buyer_id 须为2088开头的16位数字")
    if open_id and not (isinstance(open_id, str) and OPEN_ID_RE.fullmatch(open_id)):
        raise invalid("isv.invalid-buyer-open-id", "buyer_open_id 格式错误")
    trade = sandbox.open_trade(GatewayRequest(request.params, biz, request.encrypted), product_code)
    sandbox.ledger.update(trade.out_trade_no, lambda t: setattr(t, "buyer_id", buyer_id or t.buyer_id))
    return {"out_trade_no": trade.out_trade_no, "trade_no": trade.trade_no}


@gateway_method("alipay.trade.pay")
def trade_pay(sandbox: Sandbox, request: GatewayRequest) -> Dict[str, Any]:
    """Charge a scanned payment code: paid (10000), waiting for the buyer (10003) or refused."""
    biz = {"product_code": PAY_PRODUCT_CODE, **request.biz}  # pay's product_code is optional, this by default
    request = GatewayRequest(request.params, biz, request.encrypted)
    if biz.get("scene") != "bar_code":
        raise invalid("isv.invalid-scene", "scene 须为 bar_code")
    code = biz.get("auth_code")
    if not isinstance(code, str) or not AUTH_CODE_RE.fullmatch(code) or code.endswith(INVALID_CODE):
        raise business("ACQ.PAYMENT_AUTH_CODE_INVALID", "支付失败，获取顾客账户信息失败，请顾客刷新付款码后重新收款")
    waits = code.endswith((CONFIRMS_LATER, NEVER_CONFIRMS))
    with sandbox.ledger.transaction():  # open and (maybe) settle as one step
        trade = sandbox.open_trade(request, PAY_PRODUCT_CODE)
        if trade.extra.get("auth_code") not in (None, code):
            raise business("ACQ.CONTEXT_INCONSISTENT", "交易信息被篡改")
        sandbox.ledger.update(trade.out_trade_no, lambda t: t.extra.update(auth_code=code))
        if not waits:
            trade = sandbox.settle(trade.out_trade_no, TRADE_SUCCESS)
    if not waits:
        sandbox.notify(trade.out_trade_no)
        return paid_fields(sandbox, trade)
    if code.endswith(CONFIRMS_LATER):
        timer = threading.Timer(sandbox.buyer_confirms_after, confirm, (sandbox, trade.out_trade_no))
        timer.daemon = True
        timer.start()
    return {"code": WAIT_BUYER_CODE, "msg": "Business Failed", "sub_code": "ACQ.WAIT_BUYER_PAY",
            "sub_msg": "等待用户付款", "out_trade_no": trade.out_trade_no, "trade_no": trade.trade_no,
            "buyer_logon_id": trade.buyer_logon_id, "total_amount": trade.total_amount}


def confirm(sandbox: Sandbox, out_trade_no: str) -> None:
    """The buyer confirms on the phone: paid, unless the till cancelled (or it closed) first."""
    with sandbox.ledger.transaction():
        trade = sandbox.ledger.find(out_trade_no)
        if trade is None or trade.status != WAIT_BUYER_PAY:
            return
        sandbox.settle(out_trade_no, TRADE_SUCCESS)
    sandbox.notify(out_trade_no)


@gateway_method("alipay.trade.cancel")
def trade_cancel(sandbox: Sandbox, request: GatewayRequest) -> Dict[str, Any]:
    """Undo a payment whatever its state: an unpaid trade closes (``action`` close), a paid one is
    refunded in full and closes (``action`` refund, notified like a refund). No trade: success
    without ``action``, as Alipay answers when the trade never came into being."""
    biz = request.biz
    if not biz.get("out_trade_no") and not biz.get("trade_no"):
        raise invalid("isv.missing-out-trade-no", "out_trade_no 和 trade_no 不能同时为空")
    try:
        with sandbox.ledger.transaction():
            trade = find_trade(sandbox, biz)
            action = "close"
            if trade.status == TRADE_SUCCESS:
                refunds = refunds_of(trade)
                refunded = sum(money.yuan_to_cents(r["refund_amount"]) for r in refunds.values())
                left = money.yuan_to_cents(trade.total_amount) - refunded
                refunds[f"cancel_{trade.out_trade_no}"] = {"refund_amount": money.cents_to_yuan(left) if left else "0.00",
                                                           "gmt_refund_pay": clock.alipay_timestamp()}
                action = "refund"
            elif trade.status == "TRADE_FINISHED":
                raise business("ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
            if trade.status != TRADE_CLOSED:
                sandbox.settle(trade.out_trade_no, TRADE_CLOSED)
    except GatewayError as exc:
        if exc.sub_code != "ACQ.TRADE_NOT_EXIST":
            raise
        return {"out_trade_no": biz.get("out_trade_no") or "", "retry_flag": "N"}
    if action == "refund":
        sandbox.notify(trade.out_trade_no, extra={"refund_fee": trade.total_amount, "gmt_refund": clock.alipay_timestamp() + ".000"})
    return {"trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no, "retry_flag": "N", "action": action}
