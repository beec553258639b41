"""Pure pieces of issue 4: catalog parsing, Idempotency-Key rules, the run-once state machine on
an in-memory store, secrets TTL parsing, log scrubbing and JSON formatting, amount edge cases."""
from __future__ import annotations

import json
import logging
from decimal import Decimal
from typing import Dict, Optional

import pytest

from shared.domain import idempotency, money
from shared import logs, secrets
from shared.domain.catalog import Catalog, CatalogError, parse_catalog
from shared.environment import ConfigError
from shared.domain.validation import InvalidInput


# --- catalog ------------------------------------------------------------------------------------

def test_catalog_prices_are_exact_cents():
    catalog = parse_catalog({"products": {"A": {"price": "198.01"}, "B": {"price": "5"}}})
    assert catalog.prices == {"A": 19801, "B": 500}
    assert catalog.price("A", None) == catalog.price("A", "198.010") == catalog.price("A", Decimal("198.01")) == 19801


@pytest.mark.parametrize("document", [None, [], {}, {"products": []}, {"products": {"A": "1.00"}},
                                      {"products": {"A": {"price": "0"}}}, {"products": {"A": {"price": True}}}])
def test_invalid_catalogs_are_refused_whole(document):
    with pytest.raises(CatalogError):
        parse_catalog(document)


@pytest.mark.parametrize("sent, message", [("1.00", "differs"), ("abc", "not a number"), (True, "decimal string")])
def test_catalog_refuses_other_amounts(sent, message):
    with pytest.raises(InvalidInput, match=message):
        Catalog({"A": 100_00}).price("A", sent)


# --- Idempotency-Key ------------------------------------------------------------------------

@pytest.mark.parametrize("raw, key", [(None, None), ("abc", "abc"), ("  7f3a-11  ", "7f3a-11"), ("x" * 255, "x" * 255)])
def test_header_key_accepts_visible_ascii(raw, key):
    assert idempotency.header_key(lambda name: raw if name == "Idempotency-Key" else None) == key


@pytest.mark.parametrize("raw", ["", "   ", "x" * 256, "ключ", "a b", "a\x00b"])
def test_header_key_refuses_the_rest(raw):
    with pytest.raises(InvalidInput):
        idempotency.header_key(lambda name: raw)


def test_record_ids_separate_scope_caller_and_key():
    ids = {idempotency.record_id(*parts) for parts in [("pay", "a", "k"), ("pay", "b", "k"), ("pay", "a", "k2"),
                                                       ("refund", "a", "k"), ("pay", "a:k", ""), ("pay", "a", ":k")]}
    assert len(ids) == 6


class MemoryStore:
    """The IdempotencyStore contract, in a dict (what DynamoIdempotencyStore does with conditions)."""

    def __init__(self) -> None:
        self.records: Dict[str, idempotency.Record] = {}

    def claim(self, record, now) -> Optional[idempotency.Record]:
        old = self.records.get(record.id)
        if old and old.expiration > now and not (old.status == idempotency.IN_PROGRESS and old.in_progress_expiration <= now):
            return old
        self.records[record.id] = record
        return None

    def complete(self, record_id, result, expiration):
        old = self.records[record_id]
        self.records[record_id] = idempotency.Record(old.id, idempotency.COMPLETED, old.fingerprint, expiration,
                                                     old.in_progress_expiration, result)

    def release(self, record_id):
        del self.records[record_id]


def run(store, request, calls, now=1000.0, key="k"):
    def operation():
        calls.append(1)
        return {"orderNum": f"O{len(calls)}", "orderStr": "s"}

    return idempotency.run_once(store, scope="pay", caller="u", key=key, request=request, operation=operation,
                                ttl=3600, clock=lambda: now)


def test_run_once_replays_refuses_and_expires():
    store, calls = MemoryStore(), []
    first = run(store, {"a": 1}, calls)
    assert run(store, {"a": 1}, calls) == idempotency.Outcome(first.result, replayed=True)
    with pytest.raises(idempotency.KeyReused):
        run(store, {"a": 2}, calls)
    assert run(store, {"a": 1}, calls, now=1000 + 3600).replayed is False  # expired: a new order
    assert len(calls) == 2


def test_run_once_releases_the_key_when_the_operation_fails():
    store, calls = MemoryStore(), []

    def broken():
        raise RuntimeError("dynamodb down")

    with pytest.raises(RuntimeError):
        idempotency.run_once(store, scope="pay", caller="u", key="k", request={}, operation=broken, ttl=60, clock=lambda: 0)
    assert store.records == {}
    assert run(store, {}, calls).replayed is False


def test_run_once_refuses_a_key_in_progress_until_it_is_dead():
    store, calls = MemoryStore(), []
    record = idempotency.Record(idempotency.record_id("pay", "u", "k"), idempotency.IN_PROGRESS,
                                idempotency.fingerprint({}), 5000, 1000 + idempotency.IN_PROGRESS_SECONDS)
    store.records[record.id] = record
    with pytest.raises(idempotency.KeyInUse):
        run(store, {}, calls, now=1000)
    assert run(store, {}, calls, now=1000 + idempotency.IN_PROGRESS_SECONDS).replayed is False


# --- secrets ---------------------------------------------------------------------------------

@pytest.mark.parametrize("raw, ttl", [("", 300), ("0", 0), ("60", 60)])
def test_ttl_seconds(raw, ttl):
    assert secrets.ttl_seconds({"SECRETS_TTL_SECONDS": raw}) == ttl


@pytest.mark.parametrize("raw", ["-1", "5m", "1.5"])
def test_malformed_ttl_is_a_config_error(raw):
    with pytest.raises(ConfigError, match="SECRETS_TTL_SECONDS"):
        secrets.ttl_seconds({"SECRETS_TTL_SECONDS": raw})


def test_the_direct_variable_wins_and_needs_no_fetch():
    assert secrets.key_text({"K": "text", "K_SSM": "/p"}, "K") == ("text", "K")


def test_a_fetch_failure_without_a_cached_value_is_a_config_error_naming_the_source(monkeypatch):
    cache = secrets.SecretCache(clock=lambda: 0)

    def fail(name):
        raise RuntimeError("SSM GetParameter /p failed: ThrottlingException")

    monkeypatch.setitem(secrets.FETCHERS, secrets.SSM_SUFFIX, fail)
    with pytest.raises(ConfigError) as info:
        cache.get(secrets.SSM_SUFFIX, "/p", 300, "K_SSM")
    assert info.value.variable == "K_SSM" and "ThrottlingException" in str(info.value)


# --- logs ------------------------------------------------------------------------------------

def test_scrub_removes_pem_blocks_and_key_bodies(app_keys):
    pem = app_keys.private_pem()
    for text in (pem, json.dumps({"Value": pem}), app_keys.private_base64(), f"key={app_keys.private_base64()} end"):
        scrubbed = logs.scrub(text)
        assert "MII" not in scrubbed and "PRIVATE KEY" not in scrubbed and logs.REDACTED in scrubbed


def test_scrub_leaves_ordinary_lines_alone():
    line = "notify ORDER_1764150000000_abcdefghijkl -> success (TRADE_SUCCESS: applied) 2026112622001400000000000001"
    assert logs.scrub(line) == line


def test_json_formatter_carries_context_and_extras():
    logs.clear(function_request_id="r-1")
    logs.bind(order_num="ORDER_1_a", ignored=None)
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "hello %s", ("world",), None)
    record.outcome = "applied"
    line = json.loads(logs.JsonFormatter(service="pay").format(record))
    assert line | {"timestamp": None} == {"timestamp": None, "level": "WARNING", "logger": "x", "message": "hello world",
                                          "service": "pay", "function_request_id": "r-1", "order_num": "ORDER_1_a",
                                          "outcome": "applied"}
    logs.clear()


# --- amounts ----------------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["1e999999", "-1e999999", "1e-999999", "1.00000000000000000000000000001",
                                   "0." + "0" * 80 + "1", "9" * 40])
def test_extreme_amounts_are_refused_not_rounded_or_overflowing(value):
    with pytest.raises(money.InvalidAmount):
        money.yuan_to_cents(value)


def test_many_trailing_zeros_are_still_exact():
    assert money.yuan_to_cents("1." + "0" * 80) == 100
