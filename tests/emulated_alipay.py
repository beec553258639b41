"""The local Alipay emulator (local/sandbox.py) plugged in as the gateway client's transport.

Requests go through the emulator's real verification and method table, answers come back signed
by the fixture's Alipay key, so the client's whole parsing path runs; only the socket is skipped
(tests/e2e does the same over HTTP). Hooks let a test lose an answer or inject a signed error.
"""
from __future__ import annotations

import json
from typing import Callable, List, Optional
from urllib.parse import parse_qsl

from local import alipay
from local.ledger import TRADE_SUCCESS, WAIT_BUYER_PAY, Trade
from local.sandbox import AnswerLost, Sandbox
from shared.domain import clock
from shared.alipay.gateway import AlipayGateway, GatewayError

APP_ID = "2021000000000001"
SELLER_ID = "2088000000000001"


class EmulatedAlipay:
    def __init__(self, app_keys: alipay.KeyPair, alipay_keys: alipay.KeyPair) -> None:
        self.alipay_keys = alipay_keys
        self.app_keys = app_keys
        self.sandbox = Sandbox(app_id=APP_ID, seller_id=SELLER_ID, app_public_key=app_keys.public_key,
                               alipay_private_key=alipay_keys.private_key)
        self.calls: List[tuple] = []
        self.fail_next: Optional[Exception] = None  # raise this instead of answering (once)
        self.answer_next: Optional[dict] = None  # answer this signed payload instead (once)
        self.after: Optional[Callable[[str, dict], None]] = None  # runs after the emulator answered

    def gateway(self) -> AlipayGateway:
        return AlipayGateway(app_id=APP_ID, private_key=self.app_keys.private_key,
                             alipay_public_key=self.alipay_keys.public_key, transport=self)

    def __call__(self, url: str, query: str, body: bytes, timeout: float) -> bytes:
        params = {**dict(parse_qsl(query)), **dict(parse_qsl(body.decode()))}
        method, biz = params["method"], json.loads(params["biz_content"])
        self.calls.append((method, biz))
        if self.fail_next is not None:
            exc, self.fail_next = self.fail_next, None
            raise exc
        if self.answer_next is not None:
            payload, self.answer_next = self.answer_next, None
            return alipay.response_body(method, payload, self.alipay_keys.private_key)
        try:
            status, _, answer = self.sandbox.gateway(query.encode("ascii"), body)
        except AnswerLost as exc:  # applied at "Alipay", the answer lost on the way back
            raise GatewayError(f"gateway unreachable: {exc}") from None
        assert status == 200
        if self.after:
            self.after(method, biz)
        return answer

    def methods(self) -> List[str]:
        return [method for method, _ in self.calls]

    def add_trade(self, out_trade_no: str, total_amount: str, status: str = WAIT_BUYER_PAY) -> Trade:
        """A trade as if the buyer had opened (and, for TRADE_SUCCESS, paid) the orderStr."""
        ledger = self.sandbox.ledger
        trade = Trade(out_trade_no=out_trade_no, trade_no=ledger.new_trade_no(), app_id=APP_ID, seller_id=SELLER_ID,
                      total_amount=total_amount, subject="order", product_code="QUICK_MSECURITY_PAY", notify_url=None,
                      status=status, gmt_payment=clock.alipay_timestamp() if status == TRADE_SUCCESS else None)
        ledger.add(trade)
        return trade

    def trade(self, out_trade_no: str) -> Trade:
        return self.sandbox.ledger.find(out_trade_no)

    def set_status(self, out_trade_no: str, status: str) -> None:
        self.sandbox.ledger.update(out_trade_no, lambda trade: setattr(trade, "status", status))
