"""moto in server mode on 127.0.0.1: the handlers talk real HTTP to a DynamoDB emulator that
serves many connections at once, so concurrent deliveries race inside the emulator, not in a loop.

Fixtures for the concurrency tests; a test module imports the ones it uses.
"""
from __future__ import annotations

import functools
import logging
import threading
import uuid
from collections import Counter

import boto3
import pytest
from botocore.config import Config

from local import schema
from shared.aws import repository

MUTATIONS = ("put_item", "update_item", "delete_item")


class Writes:
    """What the emulator applied: ``updates[table]`` counts UpdateItem calls whose condition
    held, i.e. status transitions as DynamoDB saw them (however the client's answer fared)."""

    def __init__(self) -> None:
        self.updates: Counter = Counter()


def _item_atomic(backend_class, writes: Writes) -> list:
    """DynamoDB applies each single-item write atomically (condition check and write together).
    moto evaluates a condition and then writes without a lock, so two threads could both pass a
    condition: that would be the emulator's race, not ours. Serialise moto's item writes the way
    DynamoDB does; which request wins is still decided by the race."""
    lock = threading.RLock()
    originals = []
    for name in MUTATIONS:
        original = getattr(backend_class, name)
        originals.append((name, original))

        @functools.wraps(original)
        def locked(self, table_name, *args, __original=original, __name=name, **kwargs):
            with lock:
                result = __original(self, table_name, *args, **kwargs)
                if __name == "update_item":
                    writes.updates[table_name] += 1
                return result

        setattr(backend_class, name, locked)
    return originals


@pytest.fixture(scope="session")
def moto_server():
    from moto.dynamodb.models import DynamoDBBackend
    from moto.server import ThreadedMotoServer

    writes = Writes()
    originals = _item_atomic(DynamoDBBackend, writes)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}", writes
    server.stop()
    for name, original in originals:
        setattr(DynamoDBBackend, name, original)


@pytest.fixture
def transitions(moto_server):
    """Applied UpdateItems per table, as counted inside the emulator."""
    return moto_server[1].updates


@pytest.fixture
def served_dynamodb(env, moto_server, monkeypatch):
    """A fresh Order table on the moto server; the handlers' own client reaches it through
    ``AWS_ENDPOINT_URL_DYNAMODB`` (the standard per-service endpoint variable)."""
    endpoint, _ = moto_server
    table = f"order-{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", endpoint)
    # Same retry mode and attempts, but timeouts for a 2-core machine running 32 threads and the
    # emulator: these tests are about who wins a race, not latency (tests/unit/test_budget.py
    # and tests/functional/test_faults.py cover the production timeouts).
    monkeypatch.setitem(repository.BUDGETS, "dynamodb",
                        repository.CallBudget(repository.DYNAMODB.attempts, connect_timeout=5, read_timeout=10))
    monkeypatch.setenv("ORDER_TABLE", table)
    repository.reset()
    client = boto3.client("dynamodb", endpoint_url=endpoint, config=Config(max_pool_connections=64))
    schema.create_order_table(client, table)
    yield client, table
    client.delete_table(TableName=table)
    repository.reset()
