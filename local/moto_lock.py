"""moto's in-process DynamoDB, made as atomic as DynamoDB for the local stack's many threads.

DynamoDB applies each request atomically: a condition is checked and the write made as one step,
and a Query sees each item whole. moto does neither under threads: two conditional writes can both
pass their condition, and a Query that filters the index's items and then sorts them fails
(``KeyError``) when a write REMOVEs an index key in between — which reconcile's concurrent workers
do all the time. One lock around each backend request gives DynamoDB's per-request atomicity
(which request wins a race is still the race's), at no cost that matters: moto runs under the GIL.
"""
from __future__ import annotations

import functools
import threading
from typing import Callable

REQUESTS = ("put_item", "update_item", "delete_item", "get_item", "query", "scan", "batch_write_item",
            "batch_get_item", "transact_write_items", "transact_get_items")


def serialise_requests() -> Callable[[], None]:
    """Wrap moto's DynamoDB backend requests in one lock; returns the function that unwraps them."""
    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.RLock()
    originals = {name: getattr(DynamoDBBackend, name) for name in REQUESTS}

    def locked(original):
        @functools.wraps(original)
        def request(self, *args, **kwargs):
            with lock:
                return original(self, *args, **kwargs)
        return request

    for name, original in originals.items():
        setattr(DynamoDBBackend, name, locked(original))

    def undo() -> None:
        for name, original in originals.items():
            setattr(DynamoDBBackend, name, original)

    return undo
