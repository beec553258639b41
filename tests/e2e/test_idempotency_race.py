"""One Idempotency-Key, many simultaneous pay requests, over real HTTP to moto: one order."""
from __future__ import annotations

import json
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

from functions.pay.handler import handler as pay
from local import schema
from shared import config

from tests.e2e.moto_server import moto_server, served_dynamodb  # noqa: F401 - fixtures
from tests.conftest import pay_event

THREADS = 16
PURCHASE = {"productId": "P1", "userId": "U1", "orderName": "数据恢复产品 A", "total_amount": "198.01"}


def test_simultaneous_retries_with_one_key_create_one_order(served_dynamodb, monkeypatch):
    client, table = served_dynamodb
    keys_table = f"idem-{uuid.uuid4().hex[:12]}"
    client.create_table(**schema.create_table_kwargs(keys_table, "IdempotencyTable"))
    monkeypatch.setenv("IDEMPOTENCY_TABLE", keys_table)
    config.reset()
    barrier = threading.Barrier(THREADS)

    def attempt(_):
        event = pay_event(PURCHASE)
        event["headers"]["idempotency-key"] = "checkout-7f3a"
        barrier.wait()
        reply = pay(event)
        return reply["statusCode"], json.loads(reply["body"])["data"]

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        replies = list(pool.map(attempt, range(THREADS)))

    statuses = sorted(status for status, _ in replies)
    assert set(statuses) <= {200, 409} and 200 in statuses
    assert len({json.dumps(data, sort_keys=True) for status, data in replies if status == 200}) == 1
    orders = client.scan(TableName=table, ConsistentRead=True)["Items"]
    assert len(orders) == 1
    [data] = {json.dumps(d) for s, d in replies if s == 200}
    assert json.loads(data)["outTradeNo"] == orders[0]["orderNum"]["S"]
    client.delete_table(TableName=keys_table)
