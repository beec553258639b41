"""A recording stand-in for Alipay's gateway, plugged in as the gateway client's transport.

It verifies our request signature, keeps a tiny trade ledger and answers query / close / refund
with responses signed by the fixture's Alipay key, so the client's real parsing path runs.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Dict, List, Optional
from urllib.parse import parse_qsl

from local import alipay
from shared.alipay import signing
from shared.alipay.gateway import AlipayGateway

APP_ID = "2021000000000001"


@dataclass
class Trade:
    total_amount: str
    trade_status: str = "WAIT_BUYER_PAY"
    trade_no: str = "2026112622001400000000000001"
    refunds: Dict[str, str] = field(default_factory=dict)  # out_request_no -> amount


class FakeAlipay:
    def __init__(self, app_keys: alipay.KeyPair, alipay_keys: alipay.KeyPair) -> None:
        self.app_keys, self.alipay_keys = app_keys, alipay_keys
        self.trades: Dict[str, Trade] = {}
        self.calls: List[tuple] = []
        self.requests: List[dict] = []  # every request's parameters, as sent (after the sign check)
        self.fail_next: Optional[Exception] = None  # raise this instead of answering (once)
        self.error_next: Optional[dict] = None  # answer this signed error instead (once)

    def gateway(self) -> AlipayGateway:
        return AlipayGateway(app_id=APP_ID, private_key=self.app_keys.private_key,
                             alipay_public_key=self.alipay_keys.public_key, transport=self)

    def __call__(self, url: str, query: str, body: bytes, timeout: float) -> bytes:
        params = {**dict(parse_qsl(query)), **dict(parse_qsl(body.decode()))}
        assert signing.rsa2_verify(self.app_keys.public_key, signing.sign_content(params), params["sign"])
        method, biz = params["method"], json.loads(params["biz_content"])
        self.calls.append((method, biz))
        self.requests.append(params)
        if self.fail_next is not None:
            exc, self.fail_next = self.fail_next, None
            raise exc
        if self.error_next is not None:
            answer, self.error_next = self.error_next, None
        else:
            answer = getattr(self, method.replace(".", "_"))(biz)
        return alipay.response_body(method, answer, self.alipay_keys.private_key)

    def methods(self) -> List[str]:
        return [method for method, _ in self.calls]

    @staticmethod
    def _error(sub_code: str) -> dict:
        return {"code": "40004", "msg": "Business Failed", "sub_code": sub_code, "sub_msg": sub_code}

    def alipay_trade_query(self, biz: dict) -> dict:
        trade = self.trades.get(biz["out_trade_no"])
        if trade is None:
            return self._error("ACQ.TRADE_NOT_EXIST")
        return {"code": "10000", "msg": "Success", "out_trade_no": biz["out_trade_no"], "trade_no": trade.trade_no,
                "trade_status": trade.trade_status, "total_amount": trade.total_amount,
                "send_pay_date": "2026-11-26 18:01:02"}

    def alipay_trade_precreate(self, biz: dict) -> dict:
        if biz["out_trade_no"] in self.trades:
            return self._error("ACQ.TRADE_HAS_SUCCESS")
        self.trades[biz["out_trade_no"]] = Trade(total_amount=biz["total_amount"])
        return {"code": "10000", "msg": "Success", "out_trade_no": biz["out_trade_no"],
                "qr_code": f"https://qr.alipay.com/bax0{len(self.trades):04d}"}

    def alipay_trade_close(self, biz: dict) -> dict:
        trade = self.trades.get(biz["out_trade_no"])
        if trade is None:
            return self._error("ACQ.TRADE_NOT_EXIST")
        if trade.trade_status != "WAIT_BUYER_PAY":
            return self._error("ACQ.TRADE_STATUS_ERROR")
        trade.trade_status = "TRADE_CLOSED"
        return {"code": "10000", "msg": "Success", "out_trade_no": biz["out_trade_no"], "trade_no": trade.trade_no}

    def alipay_trade_refund(self, biz: dict) -> dict:
        trade = self.trades.get(biz["out_trade_no"])
        if trade is None:
            return self._error("ACQ.TRADE_NOT_EXIST")
        if trade.trade_status != "TRADE_SUCCESS" and biz["out_request_no"] not in trade.refunds:
            return self._error("ACQ.TRADE_STATUS_ERROR")
        done = trade.refunds.get(biz["out_request_no"])
        fund_change = "N"
        if done is None:
            refunded = sum(Decimal(a) for a in trade.refunds.values())
            if refunded + Decimal(biz["refund_amount"]) > Decimal(trade.total_amount):
                return self._error("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL")
            trade.refunds[biz["out_request_no"]] = biz["refund_amount"]
            fund_change = "Y"
            if refunded + Decimal(biz["refund_amount"]) == Decimal(trade.total_amount):
                trade.trade_status = "TRADE_CLOSED"
        total = sum(Decimal(a) for a in trade.refunds.values())
        return {"code": "10000", "msg": "Success", "out_trade_no": biz["out_trade_no"], "trade_no": trade.trade_no,
                "fund_change": fund_change, "refund_fee": f"{total:.2f}", "gmt_refund_pay": "2026-11-26 19:00:00"}
