"""``Idempotency-Key`` for pay: a retried request gets the same order and orderStr back.

The shape of AWS Lambda Powertools' idempotency utility, reduced to what pay needs:

1. ``claim``: a conditional put of an IN_PROGRESS record for (scope, caller, key), with the
   request's fingerprint, unless a live record exists. The store is the only arbiter, so two
   concurrent requests with one key cannot both run.
2. Claimed: run the operation; on success ``complete`` the record with its result, on failure
   ``release`` it so the client's retry may run it again.
3. Not claimed: the live record decides. Another fingerprint -> 422 (the key was reused for a
   different purchase); COMPLETED -> the stored result (a replay); IN_PROGRESS -> 409, retry later.

Records expire (``expiration``, a DynamoDB TTL attribute, default one hour). An IN_PROGRESS
record whose Lambda died also expires, after ``IN_PROGRESS_SECONDS``, so a key is never stuck.
Keys are scoped per caller: one user's key can neither replay nor block another user's order.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from hashlib import sha256
from typing import Any, Callable, Dict, Mapping, Optional, Protocol

from .validation import InvalidInput, RequestRefused

log = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
IN_PROGRESS, COMPLETED = "INPROGRESS", "COMPLETED"
IN_PROGRESS_SECONDS = 60  # longer than pay's Lambda timeout: a live request is never overtaken
MAX_KEY_LEN = 255


class KeyInUse(RequestRefused):
    """Another request with this key is still running."""

    status = 409
    reason = "idempotency_key"


class KeyReused(RequestRefused):
    """The key was first used with a different request body."""

    status = 422
    reason = "idempotency_key"


@dataclass(frozen=True)
class Record:
    """One key's state, as stored."""

    id: str
    status: str
    fingerprint: str
    expiration: int  # epoch seconds; DynamoDB's TTL attribute
    in_progress_expiration: int  # epoch seconds; an IN_PROGRESS record is dead after this
    result: Optional[Dict[str, str]] = None


class IdempotencyStore(Protocol):
    """Storage behind the state machine; each method is one atomic operation."""

    def claim(self, record: Record, now: int) -> Optional[Record]:
        """Insert ``record`` unless a live record (not expired, not a dead IN_PROGRESS) has its
        id; return that live record when there is one, None when the claim succeeded."""

    def complete(self, record_id: str, result: Dict[str, str], expiration: int) -> None:
        """Mark the record COMPLETED with its result."""

    def release(self, record_id: str) -> None:
        """Delete an IN_PROGRESS record after its operation failed."""


@dataclass(frozen=True)
class Outcome:
    result: Dict[str, str]
    replayed: bool


def header_key(headers_get: Callable[[str], Optional[str]]) -> Optional[str]:
    """The request's key, or None without the header. Visible ASCII, at most 255 characters."""
    key = headers_get(HEADER)
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > MAX_KEY_LEN or not all(33 <= ord(ch) <= 126 for ch in key):
        raise InvalidInput(f"{HEADER} must be 1-{MAX_KEY_LEN} visible ASCII characters")
    return key


def record_id(scope: str, caller: str, key: str) -> str:
    """A fixed-length id that mixes the scope and the caller in (no user data in the key column)."""
    return sha256(json.dumps([scope, caller, key]).encode("utf-8")).hexdigest()


def fingerprint(request: Mapping[str, Any]) -> str:
    """The hash of the validated request: equal purchases match however the JSON was written."""
    return sha256(json.dumps(request, sort_keys=True, default=str).encode("utf-8")).hexdigest()


def run_once(
    store: IdempotencyStore,
    *,
    scope: str,
    caller: str,
    key: str,
    request: Mapping[str, Any],
    operation: Callable[[], Dict[str, str]],
    ttl: int,
    clock: Callable[[], float] = time.time,
) -> Outcome:
    """Run ``operation`` at most once per (scope, caller, key) within ``ttl`` seconds."""
    now = int(clock())
    record = Record(
        id=record_id(scope, caller, key),
        status=IN_PROGRESS,
        fingerprint=fingerprint(request),
        expiration=now + ttl,
        in_progress_expiration=now + IN_PROGRESS_SECONDS,
    )
    live = store.claim(record, now)
    if live is not None:
        if live.fingerprint != record.fingerprint:
            raise KeyReused(f"{HEADER} was already used for a different request")
        if live.status == COMPLETED and live.result is not None:
            return Outcome(live.result, replayed=True)
        raise KeyInUse(f"a request with this {HEADER} is still in progress; retry shortly")
    try:
        result = operation()
    except BaseException:
        try:
            store.release(record.id)
        except Exception:  # noqa: BLE001 - the record then expires after IN_PROGRESS_SECONDS
            log.exception("could not release idempotency record after a failed request")
        raise
    try:
        store.complete(record.id, result, record.expiration)
    except Exception:  # noqa: BLE001 - the operation happened: answer it, do not hide the order
        log.exception("could not record the idempotent result; a retry after %ss may repeat it", IN_PROGRESS_SECONDS)
    return Outcome(result, replayed=False)
