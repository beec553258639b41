"""``Idempotency-Key`` on pay: a retried request gets the same order and orderStr, once."""
from __future__ import annotations

import json
import time
from dataclasses import asdict

import pytest

from functions.pay.handler import handler as pay
from local import schema
from shared import config
from shared.domain import idempotency, validation
from shared.aws import repository

from tests import faults
from tests.faults import sleeps  # noqa: F401 - fixture
from tests.conftest import pay_event, stored_items

IDEMPOTENCY_TABLE = "alipay-app-pay-test-Idempotency"
PURCHASE = {"productId": "P1", "userId": "U1", "orderName": "数据恢复产品 A", "total_amount": "198.01"}


@pytest.fixture
def keys_table(dynamodb, monkeypatch):
    dynamodb.create_table(**schema.create_table_kwargs(IDEMPOTENCY_TABLE, "IdempotencyTable"))
    monkeypatch.setenv("IDEMPOTENCY_TABLE", IDEMPOTENCY_TABLE)
    config.reset()
    return dynamodb


def request(key, payload=PURCHASE, sub=None):
    event = pay_event(payload)
    if key is not None:
        event["headers"]["idempotency-key"] = key
    if sub is not None:
        event["requestContext"]["authorizer"] = {"jwt": {"claims": {"sub": sub}}}
    return event


def answer(reply):
    return reply["statusCode"], json.loads(reply["body"])


def records(client):
    return client.scan(TableName=IDEMPOTENCY_TABLE, ConsistentRead=True)["Items"]


def test_a_retry_gets_the_same_order_and_order_str(keys_table):
    first = pay(request("k-1"))
    again = pay(request("k-1"))
    assert answer(first)[0] == answer(again)[0] == 200
    assert answer(first)[1]["data"] == answer(again)[1]["data"]
    assert again["headers"].get("Idempotent-Replayed") == "true" and "Idempotent-Replayed" not in first["headers"]
    assert len(stored_items(keys_table)) == 1
    [record] = records(keys_table)
    assert record["status"]["S"] == "COMPLETED"
    assert 0 < int(record["expiration"]["N"]) - time.time() <= 3600  # the TTL attribute


def test_an_equal_purchase_written_differently_is_the_same_request(keys_table):
    first = pay(request("k-2", dict(PURCHASE, total_amount="198.01")))
    again = pay(request("k-2", {"total_amount": "198.010", **{k: v for k, v in PURCHASE.items() if k != "total_amount"}}))
    assert answer(first)[1]["data"] == answer(again)[1]["data"]


def test_the_same_key_with_another_body_is_422_and_nothing_new(keys_table):
    first = pay(request("k-3"))
    other = pay(request("k-3", dict(PURCHASE, total_amount="1.00")))
    assert answer(other) == (422, {"code": 422, "data": None, "msg": "Idempotency-Key was already used for a different request"})
    assert [i["orderNum"]["S"] for i in stored_items(keys_table)] == [answer(first)[1]["data"]["outTradeNo"]]


def test_keys_are_scoped_per_caller(keys_table):
    body = {k: v for k, v in PURCHASE.items() if k != "userId"}
    mine = pay(request("shared-key", body, sub="alice"))
    theirs = pay(request("shared-key", body, sub="bob"))
    assert answer(mine)[0] == answer(theirs)[0] == 200
    assert answer(mine)[1]["data"] != answer(theirs)[1]["data"]
    assert len(stored_items(keys_table)) == 2


def test_without_a_key_every_request_is_a_new_order(keys_table):
    pay(request(None))
    pay(request(None))
    assert len(stored_items(keys_table)) == 2 and records(keys_table) == []


@pytest.mark.parametrize("key", ["", " ", "x" * 256, "ключ", "a b", "tab\tkey"])
def test_a_malformed_key_is_400(keys_table, key):
    status, body = answer(pay(request(key)))
    assert status == 400 and "Idempotency-Key" in body["msg"]
    assert stored_items(keys_table) == []


def live_record(status, *, in_progress_for=60, expires_in=3600, payload=PURCHASE, result=None):
    """A record as another request would have left it for the key ``k-live``."""
    now = int(time.time())
    new = validation.pay_request(payload)
    return idempotency.Record(
        id=idempotency.record_id("pay", new.user_id, "k-live"), status=status,
        fingerprint=idempotency.fingerprint({**asdict(new), "channel": "app"}), expiration=now + expires_in,
        in_progress_expiration=now + in_progress_for, result=result,
    ), now


def test_a_key_in_progress_elsewhere_is_409_and_runs_nothing(keys_table):
    record, now = live_record(idempotency.IN_PROGRESS)
    assert repository.idempotency_store(IDEMPOTENCY_TABLE).claim(record, now) is None
    status, body = answer(pay(request("k-live")))
    assert status == 409 and "in progress" in body["msg"]
    assert stored_items(keys_table) == []


def test_a_dead_in_progress_record_does_not_block_the_key_forever(keys_table):
    record, now = live_record(idempotency.IN_PROGRESS, in_progress_for=-1)
    repository.idempotency_store(IDEMPOTENCY_TABLE).claim(record, now)
    assert answer(pay(request("k-live")))[0] == 200
    assert len(stored_items(keys_table)) == 1


def test_an_expired_record_is_treated_as_absent(keys_table):
    record, now = live_record(idempotency.COMPLETED, expires_in=-1, result={"orderNum": "OLD", "orderStr": "old"})
    repository.idempotency_store(IDEMPOTENCY_TABLE).claim(record, now)
    status, body = answer(pay(request("k-live")))
    assert status == 200 and body["data"]["outTradeNo"] != "OLD"




def test_a_failed_pay_releases_its_key_so_the_retry_runs(keys_table, sleeps):
    client = repository.dynamodb_client()
    # PutItem #1 claims the key; the Order puts then fail on every attempt.
    faults.Faults(client, "PutItem", [None] + [faults.THROTTLED] * repository.DYNAMODB.attempts)
    failed = pay(request("k-4"))
    assert answer(failed)[0] == 500 and "orderStr" not in failed["body"]
    assert stored_items(keys_table) == [] and records(keys_table) == []

    retried = pay(request("k-4"))
    assert answer(retried)[0] == 200
    assert len(stored_items(keys_table)) == 1 and records(keys_table)[0]["status"]["S"] == "COMPLETED"


def test_a_failure_to_record_the_result_still_answers_the_order(keys_table, sleeps):
    client = repository.dynamodb_client()
    faults.Faults(client, "UpdateItem", [faults.INTERNAL_ERROR] * repository.DYNAMODB.attempts)
    reply = pay(request("k-5"))
    assert answer(reply)[0] == 200  # the order exists and its orderStr is valid: hand it out
    assert len(stored_items(keys_table)) == 1
    assert answer(pay(request("k-5")))[0] == 409  # and the key stays taken while it is in progress


def test_a_replay_after_the_order_closed_is_409_and_hands_out_no_order_str(keys_table):
    """Issue 11 #6: reconcile closes unpaid orders after 30 minutes, the key lives an hour."""
    from shared.domain.orders import CLOSED_TRADE_STATUS, apply_trade_status  # noqa: PLC0415

    first = answer(pay(request("k-closed")))[1]["data"]
    store = repository.order_repository(config.settings().order_table)
    assert apply_trade_status(store, first["outTradeNo"], CLOSED_TRADE_STATUS, None).outcome.value == "applied"
    reply = pay(request("k-closed"))
    status, body = answer(reply)
    assert status == 409 and body["data"] is None
    assert f"order {first['outTradeNo']} is closed" in body["msg"] and "new Idempotency-Key" in body["msg"]
    assert first["orderStr"] not in reply["body"] and "Idempotent-Replayed" not in reply["headers"]
    assert len(stored_items(keys_table)) == 1  # no fresh order behind the buyer's back
    # A new key is a new purchase.
    fresh = answer(pay(request("k-closed-2")))
    assert fresh[0] == 200 and fresh[1]["data"]["outTradeNo"] != first["outTradeNo"]


def test_a_replay_of_an_open_order_still_gets_its_order_str(keys_table):
    first = answer(pay(request("k-open")))[1]["data"]
    assert answer(pay(request("k-open")))[1]["data"] == first
