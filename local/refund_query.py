"""``alipay.trade.fastpay.refund.query`` in the emulator: what Alipay knows of one refund request.

As Alipay documents it: code 10000 only means the query ran. A refund Alipay made is answered with
its data (``refund_amount``, ``total_amount``, ``refund_status`` REFUND_SUCCESS, and
``gmt_refund_pay`` when ``query_options`` asks for it); one it never received (or that failed) is
answered 10000 without any refund data. ``Sandbox.refund_status_field = False`` answers as
Alipay's older answers do, without ``refund_status`` (then the data alone means success).
"""
from __future__ import annotations

from typing import Any, Dict

from local.sandbox import GatewayRequest, Sandbox, find_trade, gateway_method, invalid, refunds_of


@gateway_method("alipay.trade.fastpay.refund.query")
def trade_fastpay_refund_query(sandbox: Sandbox, request: GatewayRequest) -> Dict[str, Any]:
    biz = request.biz
    request_no = biz.get("out_request_no")
    if not isinstance(request_no, str) or not request_no:
        raise invalid("isv.missing-out-request-no", "out_request_no 不能为空")
    options = biz.get("query_options") or []
    with sandbox.ledger.transaction():
        trade = find_trade(sandbox, biz)
        done = refunds_of(trade).get(request_no)
    fields: Dict[str, Any] = {"trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no}
    if done is None:
        return fields  # nothing refunded under this out_request_no
    fields.update(out_request_no=request_no, total_amount=trade.total_amount, refund_amount=done["refund_amount"])
    if sandbox.refund_status_field:
        fields["refund_status"] = "REFUND_SUCCESS"
    if isinstance(options, list) and "gmt_refund_pay" in options:
        fields["gmt_refund_pay"] = done["gmt_refund_pay"]
    return fields
