"""Concurrent refund_settle passes, refund calls and refund notifies on the same pending refunds,
many threads at once over real HTTP to moto in server mode: every refund settles exactly once."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from functions.pay_notify.handler import handler as pay_notify
from local import alipay
from shared import refund_settle, refunds
from shared.aws.repository import REFUNDS_INDEX, DynamoOrderRepository
from shared.domain import clock
from shared.domain.orders import PAID, REFUND_DONE, Order
from shared.domain.validation import RefundRequest

from tests.conftest import APP_ID, notify_event
from tests.e2e.moto_server import moto_server, served_dynamodb  # noqa: F401 - fixtures
from tests.emulated_alipay import EmulatedAlipay

ORDERS = 6
REFUNDS_PER_ORDER = 3
THREADS = 24


def test_passes_calls_and_notifies_racing_settle_every_refund_once(served_dynamodb, app_keys, alipay_keys):
    client, table = served_dynamodb
    store = DynamoOrderRepository(table, client)
    fake = EmulatedAlipay(app_keys, alipay_keys)
    requests = []
    for n in range(ORDERS):
        order_num = f"ORDER_1795000000000_race{n}"
        store.create(Order(order_num, "P1", "U1", "order", 19801, status=PAID, trade_no=f"T{n}",
                           order_date=clock.iso(clock.now() - timedelta(hours=1))))
        fake.add_trade(order_num, "198.01", "TRADE_SUCCESS")
        requests += [RefundRequest(order_num, f"R{k}", 1000, None) for k in range(REFUNDS_PER_ORDER)]
    fake.sandbox.lose_answers(len(requests))  # every refund reaches Alipay; no answer comes back
    assert {refunds.refund(store, fake.gateway(), req).code for req in requests} == {502}

    later = clock.now() + timedelta(minutes=5)
    barrier = threading.Barrier(THREADS)

    def work(i):
        barrier.wait()
        if i % 3 == 0:  # a pass
            return refund_settle.run(store, fake.gateway(), refund_settle.Policy(), now=later).actions
        req = requests[i % len(requests)]
        if i % 3 == 1:  # the caller retries with the same outRequestNo
            return refunds.refund(store, fake.gateway(), req).code
        params = alipay.notify_params(app_id=APP_ID, out_trade_no=req.out_trade_no, total_amount="198.01",
                                      refund_fee="10.00", out_biz_no=req.out_request_no, gmt_refund="2026-11-26 22:00:00")
        return pay_notify(notify_event(alipay.sign_notify(params, alipay_keys.private_key)))["body"]

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        results = list(pool.map(work, range(THREADS)))
    assert all(r in (200, "success") or isinstance(r, dict) for r in results), results
    refund_settle.run(store, fake.gateway(), refund_settle.Policy(), now=later)  # whatever was left

    for n in range(ORDERS):
        order = store.get(f"ORDER_1795000000000_race{n}")
        assert {k: r.status for k, r in order.refunds.items()} == {f"R{k}": REFUND_DONE for k in range(REFUNDS_PER_ORDER)}
        assert order.refunded_cents == 1000 * REFUNDS_PER_ORDER
        alipay_side = fake.trade(order.order_num).extra["refunds"]
        assert sorted(alipay_side) == [f"R{k}" for k in range(REFUNDS_PER_ORDER)]  # each refunded once at Alipay
    assert client.scan(TableName=table, IndexName=REFUNDS_INDEX)["Items"] == []  # no order left behind
    items = client.scan(TableName=table)["Items"]
    assert all(int(i.get("pendingRefunds", {"N": "0"})["N"]) == 0 for i in items)
