"""EventBridge ``PutEvents`` on the stage's bus: entries in, the indexes that failed out.

PutEvents takes at most 10 entries per call and answers per entry: a call can succeed while some
of its entries failed (``FailedEntryCount``), so failures are per entry, not per call.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, List, Optional, Sequence

from .repository import client

MAX_ENTRIES = 10  # per PutEvents call (EventBridge's limit)
MAX_ENTRY_BYTES = 256 * 1024


@dataclass(frozen=True)
class Entry:
    source: str
    detail_type: str
    detail: Any
    time: Optional[str] = None  # ISO 8601; EventBridge stamps its own when absent

    def as_request(self, bus: str) -> dict:
        request = {"Source": self.source, "DetailType": self.detail_type, "EventBusName": bus,
                   "Detail": json.dumps(self.detail, ensure_ascii=False, separators=(",", ":"), sort_keys=True)}
        if self.time is not None:
            request["Time"] = self.time
        return request


class EventBus:
    """One bus, by name. ``put`` returns the positions of the entries that were not accepted."""

    def __init__(self, name: str, events_client=None) -> None:
        self.name = name
        self._client = events_client

    def put(self, entries: Sequence[Entry]) -> List[int]:
        if len(entries) > MAX_ENTRIES:
            raise ValueError(f"at most {MAX_ENTRIES} entries per PutEvents call")
        if not entries:
            return []
        requests = [entry.as_request(self.name) for entry in entries]
        reply = (self._client or client("events")).put_events(Entries=requests)
        results = reply.get("Entries") or []
        if len(results) != len(requests):  # answers must line up with the entries; otherwise trust none
            return list(range(len(requests)))
        return [i for i, result in enumerate(results) if result.get("ErrorCode") or not result.get("EventId")]
