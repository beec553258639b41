"""The worst-case arithmetic of shared/budgets.py counts every call the code really makes.

Each path runs against moto and the emulated gateway with its calls counted (botocore's own
``before-call`` events, the gateway transport); priced at each budget's worst case, the calls
must fit in the figure the Lambda timeouts are checked against (tests/unit/test_budget.py).
"""
from __future__ import annotations

import json
from collections import Counter
import threading
import time
from dataclasses import replace
from datetime import timedelta

import boto3
import pytest

from functions.pay.handler import handler as pay
from local import events, schema
from shared.domain import clock
from shared import budgets, config, reconcile, secrets
from shared.alipay import gateway as gateway_module
from shared.aws import repository
from shared.domain.orders import Order
from shared.alipay.gateway import DEFAULT_TIMEOUT as GATEWAY_TIMEOUT
from shared.aws.repository import BUDGETS
from shared.budgets import NOTIFY_COMPUTE_ALLOWANCE

from tests.conftest import TABLE
from tests.emulated_alipay import EmulatedAlipay

IDEMPOTENCY_TABLE = "alipay-app-pay-test-Idempotency"
PURCHASE = {"productId": "P1", "userId": "U1", "orderName": "数据恢复产品 A", "total_amount": "198.01"}
REFUSED = {"code": "40004", "msg": "Business Failed", "sub_code": "ACQ.ACCESS_FORBIDDEN", "sub_msg": "no"}


class Calls:
    """Every AWS call of the handlers' own clients, and every gateway call, counted."""

    def __init__(self, fake: EmulatedAlipay) -> None:
        self.aws: Counter = Counter()
        self.fake = fake
        for service in ("dynamodb", "ssm"):
            repository.client(service).meta.events.register(
                "before-call", lambda service=service, **_: self.aws.update([service])
            )

    def snapshot(self) -> Counter:
        return Counter({**self.aws, "gateway": len(self.fake.calls)})


def priced(calls: Counter, gateway_timeout: float = GATEWAY_TIMEOUT) -> float:
    """The calls at their worst: every AWS call with all its attempts timed out and backed off."""
    aws = sum(count * BUDGETS[service].worst_case_seconds() for service, count in calls.items() if service in BUDGETS)
    return aws + calls["gateway"] * gateway_timeout + NOTIFY_COMPUTE_ALLOWANCE


@pytest.fixture
def fake(app_keys, alipay_keys, monkeypatch):
    fake = EmulatedAlipay(app_keys, alipay_keys)
    monkeypatch.setattr(gateway_module, "http_post", fake)
    return fake


@pytest.fixture
def cold_pay(dynamodb, fake, monkeypatch, app_keys, alipay_keys):
    """pay as deployed, cold: both keys in SSM and not yet read, an Idempotency table."""
    ssm = boto3.client("ssm")
    for name, value in (("app-private-key", app_keys.private_pem()), ("alipay-public-key", alipay_keys.public_base64())):
        ssm.put_parameter(Name=f"/test/{name}", Value=value, Type="SecureString")
    monkeypatch.delenv("ALIPAY_APP_PRIVATE_KEY")
    monkeypatch.delenv("ALIPAY_PUBLIC_KEY")
    monkeypatch.setenv("ALIPAY_APP_PRIVATE_KEY_SSM", "/test/app-private-key")
    monkeypatch.setenv("ALIPAY_PUBLIC_KEY_SSM", "/test/alipay-public-key")
    monkeypatch.setenv("ALIPAY_RETURN_URL", "https://shop.example.com/pay/return")
    monkeypatch.setenv("IDEMPOTENCY_TABLE", IDEMPOTENCY_TABLE)
    dynamodb.create_table(**schema.create_table_kwargs(IDEMPOTENCY_TABLE, "IdempotencyTable"))
    config.reset()
    secrets.cache.clear()
    yield Calls(fake)
    secrets.cache.clear()


@pytest.mark.parametrize("channel, refused", [("app", False), ("page", False), ("wap", False),
                                              ("precreate", False), ("precreate", True)])
def test_pays_worst_case_prices_every_call_of_every_channel(cold_pay, fake, channel, refused):
    if refused:
        fake.answer_next = REFUSED
    body = json.dumps({**PURCHASE, "channel": channel}).encode()
    reply = pay(events.http_event("POST", "/pay", body, {"content-type": "application/json", "Idempotency-Key": "K1"}))
    assert reply["statusCode"] == (502 if refused else 200), reply
    calls = cold_pay.snapshot()
    if channel == "precreate":  # the path the old arithmetic left out: Alipay's key and the gateway
        assert calls["ssm"] == 2 and calls["gateway"] == 1
    assert priced(calls) <= budgets.pay_worst_case_seconds(), dict(calls)


# --- reconcile: what one more order may cost ------------------------------------------------------

NOW = clock.now()
POLICY = reconcile.Policy(min_age=timedelta(minutes=5), close_after=timedelta(minutes=30), max_orders=100)


@pytest.fixture
def orders(dynamodb, fake):
    """Unpaid orders down every path of ``reconcile.settle``: paid at Alipay, expired and waiting
    (query, then close), unknown to Alipay and expired (close), waiting and young, and Alipay's
    amount differing (a refused transition, then the reschedule)."""
    store = repository.DynamoOrderRepository(TABLE)
    for order_num, age, status, amount in (
        ("ORDER_PAID", 40, "TRADE_SUCCESS", "198.01"), ("ORDER_WAIT", 45, "WAIT_BUYER_PAY", "198.01"),
        ("ORDER_GONE", 50, None, None), ("ORDER_YOUNG", 10, "WAIT_BUYER_PAY", "198.01"),
        ("ORDER_OTHER", 55, "TRADE_SUCCESS", "0.01"),
    ):
        created = NOW - timedelta(minutes=age)
        store.create(Order(order_num, "P1", "U1", "order", 19801, order_date=clock.iso(created),
                           reconcile_at=clock.iso(created + POLICY.min_age)))
        if status:
            fake.add_trade(order_num, amount, status)
    return store


def test_reconciles_reserve_prices_every_call_between_two_time_checks(orders, fake):
    """Between one ``time_left`` check and the next: one order looked at, all it took."""
    calls = Calls(fake)
    marks = []

    def time_left():
        marks.append(calls.snapshot())
        return float("inf")

    gateway = fake.gateway()
    report = reconcile.run(orders, gateway, replace(POLICY, concurrency=1), now=NOW, time_left=time_left)
    assert report.complete and report.actions == {"paid": 1, "closed": 1, "closed_here": 1, "waiting": 1, "mismatch": 1}
    spans = [after - before for before, after in zip(marks, marks[1:] + [calls.snapshot()])]
    assert max(spans, key=priced)["gateway"] == 2  # the close path: query and close
    reserve = budgets.reconcile_order_worst_case_seconds(gateway.timeout)
    assert all(priced(span, gateway.timeout) <= reserve for span in spans), [dict(s) for s in spans]


def test_a_pass_takes_no_order_it_may_not_finish(orders, fake):
    gateway = fake.gateway()
    reserve = budgets.reconcile_order_worst_case_seconds(gateway.timeout)
    report = reconcile.run(orders, gateway, POLICY, now=NOW, time_left=lambda: reserve - 0.01)
    assert not report.complete and report.actions == {} and fake.calls == []
    report = reconcile.run(orders, gateway, POLICY, now=NOW, time_left=lambda: reserve)
    assert report.complete and sum(report.actions.values()) == 5


def test_with_a_pool_every_look_starts_at_once_after_its_time_check(orders, fake, monkeypatch):
    """Concurrent looks keep the reserve's promise: at each time check a worker is free, so the
    look it admits starts then (never queued), and ends within the reserve it was checked against."""
    lock, running, at_checks, peak = threading.Lock(), [0], [], [0]
    settle = reconcile.settle

    def counted(*args):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        try:
            time.sleep(0.05)  # gateway latency, so the looks overlap
            return settle(*args)
        finally:
            with lock:
                running[0] -= 1

    def time_left():
        with lock:
            at_checks.append(running[0])
        return float("inf")

    monkeypatch.setattr(reconcile, "settle", counted)
    report = reconcile.run(orders, fake.gateway(), replace(POLICY, concurrency=3), now=NOW, time_left=time_left)
    assert report.complete and sum(report.actions.values()) == 5
    assert len(at_checks) == 5 and max(at_checks) <= 2 and peak[0] == 3
