"""pay with channel=barcode: alipay.trade.pay at the emulator, then query and cancel, and the
order settled before the till gets its answer (shared/barcode.py). The emulator's payment codes
force each path: ...0001 confirms later, ...0002 never confirms, ...0003 is refused."""
import json
from urllib.parse import parse_qsl

import pytest

from functions.pay.handler import handler as pay
from local import sandbox_trades
from local.ledger import TRADE_CLOSED, TRADE_SUCCESS
from shared import barcode, config
from shared.alipay import gateway as gateway_module
from shared.domain.orders import CLOSED, PAID, UNPAID

from tests.conftest import pay_event, stored_items
from tests.emulated_alipay import EmulatedAlipay
from tests.functional.test_jsapi import Sent

PAYS_AT_ONCE, CONFIRMS, NEVER, INVALID = "28763443825664394", "28763443825660001", "28763443825660002", "28763443825660003"
ORDER = {"productId": "P1", "userId": "U1", "orderName": "数据恢复产品 A", "total_amount": "198.01", "channel": "barcode"}


@pytest.fixture
def emulator(env, monkeypatch, app_keys, alipay_keys):
    monkeypatch.setenv("BARCODE_WAIT_SECONDS", "1.5")  # the deployed default is 9 s (shared/budgets.py)
    monkeypatch.setenv("BARCODE_POLL_SECONDS", "0.1")
    emulator = EmulatedAlipay(app_keys, alipay_keys)
    emulator.sandbox.notifier = Sent()
    emulator.sandbox.buyer_confirms_after = 0.3
    monkeypatch.setattr(gateway_module, "http_post", emulator)
    return emulator


def charge(code, **extra):
    reply = pay(pay_event({**ORDER, "authCode": code, **extra}))
    return reply["statusCode"], json.loads(reply["body"])


def test_a_code_that_pays_at_once_answers_paid_and_the_row_is_paid(emulator, store):
    status, body = charge(PAYS_AT_ONCE, storeId="NJ_001")
    assert status == 200 and body["data"]["status"] == PAID, body
    order = store.get(body["data"]["outTradeNo"])
    assert order.status == PAID and order.trade_no == body["data"]["tradeNo"] and order.reconcile_at is None
    (method, biz), = emulator.calls
    assert method == "alipay.trade.pay" and biz["scene"] == "bar_code" and biz["auth_code"] == PAYS_AT_ONCE
    assert biz["store_id"] == "NJ_001" and biz["product_code"] == "FACE_TO_FACE_PAYMENT"
    assert emulator.trade(order.order_num).status == TRADE_SUCCESS


def test_a_buyer_who_confirms_on_the_phone_is_polled_until_paid(emulator, store, monkeypatch):
    monkeypatch.setenv("BARCODE_WAIT_SECONDS", "6")  # room for a loaded machine; paid after ~0.3 s
    config.reset()
    status, body = charge(CONFIRMS)
    assert status == 200 and body["data"]["status"] == PAID, body
    assert store.get(body["data"]["outTradeNo"]).status == PAID
    methods = emulator.methods()
    assert methods[0] == "alipay.trade.pay" and set(methods[1:]) == {"alipay.trade.query"} and len(methods) >= 2


def test_a_buyer_who_never_confirms_is_cancelled_and_the_order_closed(emulator, store):
    status, body = charge(NEVER)
    assert status == 200 and body["data"]["status"] == CLOSED, body
    order = store.get(body["data"]["outTradeNo"])
    assert order.status == CLOSED and order.reconcile_at is None
    assert emulator.methods()[-1] == "alipay.trade.cancel" and emulator.methods()[-2] == "alipay.trade.query"
    assert emulator.trade(order.order_num).status == TRADE_CLOSED


def test_an_invalid_code_is_refused_and_the_order_closed_without_cancel(emulator, store):
    status, body = charge(INVALID)
    assert status == 200 and body["data"]["status"] == CLOSED and body["data"]["reason"] == "ACQ.PAYMENT_AUTH_CODE_INVALID"
    assert emulator.methods() == ["alipay.trade.pay"]
    assert store.get(body["data"]["outTradeNo"]).status == CLOSED


def test_a_lost_answer_is_found_by_the_query(emulator, store):
    real = emulator.sandbox.gateway
    lost = []

    def gateway(query, body):  # Alipay charged the code; its answer never reaches us
        answer = real(query, body)
        if b"alipay.trade.pay" in query and not lost:
            lost.append(answer)
            raise gateway_module.GatewayError("gateway unreachable: timeout")
        return answer

    emulator.sandbox.gateway = gateway
    status, body = charge(PAYS_AT_ONCE)
    assert lost and status == 200 and body["data"]["status"] == PAID, body
    assert emulator.methods()[:2] == ["alipay.trade.pay", "alipay.trade.query"]
    assert "alipay.trade.cancel" not in emulator.methods()


def test_service_unavailable_is_queried_then_cancelled(emulator, store):
    emulator.answer_next = {"code": "20000", "msg": "Service Currently Unavailable", "sub_code": "ACQ.SYSTEM_ERROR", "sub_msg": "x"}
    status, body = charge(PAYS_AT_ONCE)
    assert status == 200 and body["data"]["status"] == CLOSED, body
    methods = emulator.methods()
    assert methods[0] == "alipay.trade.pay" and methods[-1] == "alipay.trade.cancel" and "alipay.trade.query" in methods


def test_a_payment_landing_during_the_cancel_is_reversed(emulator, store, monkeypatch):
    real = emulator.sandbox.gateway

    def gateway(query, body):  # the buyer confirms on the phone just as the till's cancel arrives
        if b"alipay.trade.cancel" in query:
            biz = json.loads(dict(parse_qsl(body.decode()))["biz_content"])
            sandbox_trades.confirm(emulator.sandbox, biz["out_trade_no"])
        return real(query, body)

    emulator.sandbox.buyer_confirms_after = 3600
    emulator.sandbox.gateway = gateway
    monkeypatch.setenv("BARCODE_WAIT_SECONDS", "0.15")
    config.reset()
    status, body = charge(NEVER)
    assert status == 200 and body["data"]["status"] == CLOSED, body
    assert body["data"]["reason"] == "cancelled, the payment refunded"
    trade = emulator.trade(body["data"]["outTradeNo"])
    assert trade.status == TRADE_CLOSED and len(trade.extra["refunds"]) == 1  # refunded in full


def test_a_cancel_that_never_answers_is_502_look_again_and_the_row_waits_for_reconcile(emulator, store, monkeypatch):
    monkeypatch.setattr(barcode.budgets, "barcode_cancel_window", lambda: 0.3)
    real = emulator.sandbox.gateway

    def gateway(query, body):
        if b"alipay.trade.cancel" in query:
            raise gateway_module.GatewayError("gateway unreachable: timeout")
        return real(query, body)

    emulator.sandbox.gateway = gateway
    status, body = charge(NEVER)
    assert status == 502 and body["data"]["status"] == UNPAID and "GET /orders/" in body["msg"], body
    order = store.get(body["data"]["outTradeNo"])
    assert order.status == UNPAID and order.reconcile_at is not None


@pytest.mark.parametrize("code", [None, "", "12345678901234567", "2876344382566", "28763443825664394999999999", "2876344382566439x"])
def test_a_missing_or_malformed_code_is_400_and_writes_nothing(emulator, dynamodb, code):
    payload = {**ORDER, "authCode": code} if code is not None else ORDER
    reply = pay(pay_event(payload))
    assert reply["statusCode"] == 400 and "authCode" in json.loads(reply["body"])["msg"]
    assert stored_items(dynamodb) == [] and emulator.calls == []


class Clock:
    """Time that moves only when the flow waits: every gateway call takes its whole timeout."""

    def __init__(self):
        self.now = 0.0

    def monotonic(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def test_the_worst_case_ends_within_the_wait_and_the_cancel_window(emulator, store, monkeypatch):
    """Nothing ever answers, every call runs to its timeout: the flow still ends, on time."""
    clock = Clock()
    timeouts = []

    def silent(url, query, body, timeout):
        timeouts.append(timeout)
        clock.now += timeout
        raise gateway_module.GatewayError("timeout")

    monkeypatch.setattr(gateway_module, "http_post", silent)
    real_till = barcode.Till
    monkeypatch.setattr(barcode, "Till", lambda wait, poll, cancel: real_till(
        9.0, 3.0, cancel, sleep=clock.sleep, monotonic=clock.monotonic))
    status, body = charge(NEVER)
    assert status == 502
    wait, cancel = 9.0, barcode.budgets.barcode_cancel_window()
    assert clock.now <= wait + cancel + 1e-9, clock.now
    assert len(timeouts) >= 3 and all(t <= gateway_module.DEFAULT_TIMEOUT for t in timeouts)


def test_a_retried_request_with_its_idempotency_key_replays_the_answer_without_charging_again(emulator, dynamodb, monkeypatch):
    from local import events, schema

    monkeypatch.setenv("IDEMPOTENCY_TABLE", "alipay-app-pay-test-Idempotency")
    dynamodb.create_table(**schema.create_table_kwargs("alipay-app-pay-test-Idempotency", "IdempotencyTable"))
    config.reset()
    body = json.dumps({**ORDER, "authCode": PAYS_AT_ONCE}).encode()
    request = events.http_event("POST", "/pay", body, {"content-type": "application/json", "Idempotency-Key": "TILL-1-0042"})
    first, again = pay(request), pay(request)
    assert first["statusCode"] == again["statusCode"] == 200 and again["headers"]["Idempotent-Replayed"] == "true"
    assert json.loads(first["body"])["data"] == json.loads(again["body"])["data"]
    assert json.loads(again["body"])["data"]["status"] == PAID and emulator.methods() == ["alipay.trade.pay"]
