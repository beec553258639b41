"""Publish the Order table's state changes to the stage's EventBridge bus (issue 15).

Lambda's DynamoDB-stream event source hands us batches of writes in order. Each write becomes its
events (shared/domain/events.py); they are put on the bus in that order, ten at a time. At the
first record whose events are not all accepted (or that cannot be read) we stop and answer a
partial batch response naming it: Lambda keeps what came before, retries from there (bisecting a
batch that keeps failing) and, after its retries, parks the rest in the on-failure queue, which
an alarm watches. Delivery is therefore at least once, in order per order; consumers drop
duplicates by ``detail.eventId``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Sequence, Tuple

from .aws import metrics
from .aws.eventbridge import MAX_ENTRIES, Entry, EventBus
from .aws.streams import MalformedRecord, order_change
from .domain.events import order_events

log = logging.getLogger(__name__)


@dataclass
class PublishResult:
    published: int = 0
    failed_sequence: List[str] = field(default_factory=list)

    def response(self) -> Dict[str, Any]:
        """Lambda's partial batch response (``functionResponseType: ReportBatchItemFailures``)."""
        return {"batchItemFailures": [{"itemIdentifier": seq} for seq in self.failed_sequence]}


def _entries(records: Sequence[Mapping[str, Any]], source: str) -> Tuple[List[Tuple[str, Entry]], str]:
    """(sequence number, entry) for every event of the readable prefix of ``records``, and the
    sequence number of the first unreadable record ("" when all are readable)."""
    found: List[Tuple[str, Entry]] = []
    for record in records:
        try:
            change = order_change(record)
        except MalformedRecord as exc:
            log.error("unreadable stream record: %s", exc)
            sequence = str((record.get("dynamodb") or {}).get("SequenceNumber", "")) if isinstance(record, Mapping) else ""
            return found, sequence or "unknown"
        for event in order_events(change.before, change.after, change.at):
            found.append((change.sequence_number, Entry(source, event.detail_type, event.detail, change.at)))
    return found, ""


def publish(records: Sequence[Mapping[str, Any]], bus: EventBus, source: str) -> PublishResult:
    """Put the events of ``records`` on ``bus`` in order; stop at the first record that fails."""
    entries, unreadable = _entries(records, source)
    result = PublishResult()
    for start in range(0, len(entries), MAX_ENTRIES):
        chunk = entries[start:start + MAX_ENTRIES]
        try:
            failed = bus.put([entry for _, entry in chunk])
        except Exception as exc:  # noqa: BLE001 - any failure to publish: the batch is retried from here
            log.warning("PutEvents failed: %s", exc)
            failed = list(range(len(chunk)))
        if failed:
            first = failed[0]
            result.published += first  # entries before the first failure were accepted
            result.failed_sequence = [chunk[first][0]]
            log.warning("%d event(s) not accepted; retrying from record %s", len(chunk) - first, chunk[first][0])
            break
        result.published += len(chunk)
    else:
        if unreadable:
            result.failed_sequence = [unreadable]
    metrics.emit({"EventsPublished": result.published, "EventsFailed": 1 if result.failed_sequence else 0})
    return result
