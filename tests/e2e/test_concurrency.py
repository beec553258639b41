"""Duplicate and racing notifies, delivered by many threads at once over real HTTP to moto."""
from __future__ import annotations

import logging
import random
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import List

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from functions.pay_notify.handler import handler as pay_notify
from local import alipay
from shared import reconcile
from shared.domain import clock
from shared.domain.orders import CLOSED, PAID, Order
from shared.aws.repository import DynamoOrderRepository

from tests.e2e.moto_server import moto_server, served_dynamodb, transitions  # noqa: F401 - fixtures
from tests.conftest import APP_ID, notify_event
from tests.emulated_alipay import EmulatedAlipay

THREADS = 32


class Outcomes(logging.Handler):
    """Collects the ``outcome`` pay_notify logs for every delivery (thread-safe: Handler locks)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: List[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if hasattr(record, "outcome"):
            self.records.append(record)

    def count(self, outcome: str, trade_status: str | None = None) -> int:
        return sum(
            1 for r in self.records
            if r.outcome == outcome and (trade_status is None or trade_status in r.getMessage())
        )


@pytest.fixture
def outcomes():
    handler = Outcomes()
    root = logging.getLogger()
    root.addHandler(handler)
    yield handler
    root.removeHandler(handler)


def unpaid(store: DynamoOrderRepository, order_num: str, cents: int = 19801) -> None:
    store.create(Order(order_num=order_num, product_id="P1", user_id="U1", order_name="order", total_cents=cents))


def signed(keys, order_num: str, status: str = "TRADE_SUCCESS", amount: str = "198.01", trade_no: str = "2026112622001400000000000001"):
    params = alipay.notify_params(app_id=APP_ID, out_trade_no=order_num, total_amount=amount, trade_status=status, trade_no=trade_no)
    return notify_event(alipay.sign_notify(params, keys.private_key))


def deliver_at_once(events) -> List[str]:
    """Each event from its own thread, all released by one barrier; asserts they overlapped."""
    barrier = threading.Barrier(len(events))
    lock = threading.Lock()
    in_flight = [0, 0]  # now, peak

    def deliver(event):
        barrier.wait()
        with lock:
            in_flight[0] += 1
            in_flight[1] = max(in_flight)
        try:
            return pay_notify(event)["body"]
        finally:
            with lock:
                in_flight[0] -= 1

    with ThreadPoolExecutor(max_workers=len(events)) as pool:
        answers = list(pool.map(deliver, events))
    assert in_flight[1] > len(events) // 2, f"deliveries did not overlap (peak {in_flight[1]})"
    return answers


def test_32_simultaneous_duplicates_make_exactly_one_transition(served_dynamodb, alipay_keys, outcomes, transitions):
    client, table = served_dynamodb
    store = DynamoOrderRepository(table, client)
    unpaid(store, "ORDER_1_race")
    event = signed(alipay_keys, "ORDER_1_race")

    answers = deliver_at_once([event] * THREADS)

    assert answers == ["success"] * THREADS
    assert transitions[table] == 1  # inside the emulator: one UpdateItem passed its condition
    # Our side agrees: one delivery saw APPLIED (none, if its answer was lost to a read timeout
    # and botocore's retry then found the order paid), every other one ALREADY.
    assert outcomes.count("applied") <= 1
    assert outcomes.count("applied") + outcomes.count("already") == THREADS
    order = store.get("ORDER_1_race")
    assert order.status == PAID and order.trade_no == "2026112622001400000000000001"


def test_success_and_closed_racing_end_paid(served_dynamodb, alipay_keys, outcomes, transitions):
    client, table = served_dynamodb
    store = DynamoOrderRepository(table, client)
    unpaid(store, "ORDER_2_race")
    success = signed(alipay_keys, "ORDER_2_race", "TRADE_SUCCESS")
    closed = signed(alipay_keys, "ORDER_2_race", "TRADE_CLOSED")
    events = [success, closed] * (THREADS // 2)
    random.Random(4).shuffle(events)

    answers = deliver_at_once(events)

    assert answers == ["success"] * THREADS
    # Paid once; closed at most once, and only before the payment landed (closed -> paid is
    # allowed: Alipay's money wins). Never paid -> closed.
    assert 1 <= transitions[table] <= 2
    assert outcomes.count("applied", "TRADE_SUCCESS") <= 1 and outcomes.count("applied", "TRADE_CLOSED") <= 1
    assert store.get("ORDER_2_race").status == PAID


def test_500_orders_times_2_interleaved_duplicates_make_500_transitions(served_dynamodb, alipay_keys, outcomes, transitions):
    client, table = served_dynamodb
    store = DynamoOrderRepository(table, client)
    numbers = [f"ORDER_3_{i:04d}" for i in range(500)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(lambda n: unpaid(store, n), numbers))
    events = [signed(alipay_keys, n, trade_no=f"20261126220014{i:014d}") for i, n in enumerate(numbers)]
    deliveries = events * 2
    random.Random(500).shuffle(deliveries)

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        answers = list(pool.map(lambda e: pay_notify(e)["body"], deliveries))

    assert answers.count("success") == 1000
    assert transitions[table] == 500
    assert outcomes.count("applied") + outcomes.count("already") == 1000 and outcomes.count("applied") <= 500
    items = client.scan(TableName=table, ConsistentRead=True)["Items"]
    assert len(items) == 500
    assert {int(i["status"]["N"]) for i in items} == {PAID}


# --- reconcile: concurrent passes, buyers and notifies (issue 13 #2) -----------------------------

RECONCILE_POLICY = reconcile.Policy(min_age=timedelta(minutes=5), close_after=timedelta(minutes=30), max_orders=100,
                                    concurrency=4)
BUYER = st.sampled_from(["pay_notified", "pay_lost", "open", "open_then_pay_lost", "nothing"])


@settings(max_examples=6, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(buyers=st.lists(BUYER, min_size=4, max_size=10), seed=st.integers(0, 2 ** 16))
def test_orders_paid_and_reconciled_by_concurrent_passes_never_lose_an_update(served_dynamodb, app_keys, alipay_keys,
                                                                             buyers, seed):
    """Buyers (paying with the notify delivered or lost, opening and never paying, paying late),
    pay_notify and three reconcile passes at once, each pass itself four looks at a time, over
    real HTTP to moto; then the orders' own looks until none is due. Whatever the interleaving:
    every trade Alipay has paid is paid here (none lost), every other order ends closed here and
    at Alipay (none left open), and no settled order is still in the index."""
    client, table = served_dynamodb
    store = DynamoOrderRepository(table, client)
    fake = EmulatedAlipay(app_keys, alipay_keys)
    created = clock.now().replace(microsecond=0) - timedelta(minutes=10)
    numbers = [f"ORDER_RC_{seed}_{i}" for i in range(len(buyers))]
    for order_num in numbers:
        store.create(Order(order_num, "P1", "U1", "order", 19801, order_date=clock.iso(created),
                           reconcile_at=clock.iso(created + RECONCILE_POLICY.min_age)))
    ledger = fake.sandbox.ledger

    def pay(order_num: str, notify: bool) -> None:
        with ledger.transaction():  # the buyer pays only a trade still open (or creates it paid)
            trade = fake.trade(order_num)
            if trade is None:
                trade = fake.add_trade(order_num, "198.01", "TRADE_SUCCESS")
            elif trade.status == "WAIT_BUYER_PAY":
                fake.set_status(order_num, "TRADE_SUCCESS")
            else:
                return  # closed by a pass meanwhile: Alipay refuses the payment
        if notify:
            params = alipay.notify_params(app_id=APP_ID, out_trade_no=order_num, total_amount="198.01",
                                          trade_no=trade.trade_no)
            assert pay_notify(notify_event(alipay.sign_notify(params, alipay_keys.private_key)))["body"] == "success"

    def buyer(order_num: str, kind: str) -> None:
        if kind.startswith("open"):
            with ledger.transaction():
                if fake.trade(order_num) is None:
                    fake.add_trade(order_num, "198.01")
        if kind.startswith("pay") or kind == "open_then_pay_lost":
            pay(order_num, notify=kind == "pay_notified")

    later = created + RECONCILE_POLICY.close_after + timedelta(minutes=5)  # past the timeout: closes race payments
    work = [lambda n=n, k=k: buyer(n, k) for n, k in zip(numbers, buyers)]
    work += [lambda at=at: reconcile.run(store, fake.gateway(), RECONCILE_POLICY, now=at)
             for at in (created + timedelta(minutes=6), later, later)]
    random.Random(seed).shuffle(work)
    with ThreadPoolExecutor(max_workers=len(work)) as pool:
        list(pool.map(lambda job: job(), work))

    t = later
    for _ in range(80):  # then the orders' own looks, as the schedule would make them, until none is due
        due = [store.get(n).reconcile_at for n in numbers]
        due = [datetime.fromisoformat(at) for at in due if at is not None]
        if not due:
            break
        t = max(t, min(due))
        reconcile.run(store, fake.gateway(), RECONCILE_POLICY, now=t)
    else:
        pytest.fail("orders still due after 80 passes")
    for order_num, kind in zip(numbers, buyers):
        order, trade = store.get(order_num), fake.trade(order_num)
        assert order.reconcile_at is None, (order_num, kind)
        if trade is not None and trade.status == "TRADE_SUCCESS":
            assert order.status == PAID and order.trade_no == trade.trade_no, (order_num, kind)
        else:
            assert order.status == CLOSED and (trade is None or trade.status == "TRADE_CLOSED"), (order_num, kind)
