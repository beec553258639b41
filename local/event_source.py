"""Lambda's DynamoDB-stream event source mapping, played over moto's DynamoDB Streams.

moto keeps a real stream for a table created with a ``StreamSpecification`` (the very definition
serverless.yml deploys), but runs no Lambda on it. This does what the mapping of serverless.yml's
``stream`` event does, with its settings: read each shard from TRIM_HORIZON, hand the handler
batches shaped as Lambda's events (numbers as numbers, the write time in epoch seconds), keep
what a partial batch response acknowledges, retry from the first failed record, halve a batch
that keeps failing (``bisectBatchOnFunctionError``), and after ``maximumRetryAttempts`` park the
record on the on-failure destination (a list here; an SQS queue when deployed).
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional

from shared.aws.streams import lambda_record

log = logging.getLogger(__name__)


@dataclass
class StreamEventSource:
    """One mapping: ``streams_client``'s stream ``stream_arn`` -> ``handler(event, None)``."""

    streams_client: Any
    stream_arn: str
    handler: Callable[[Dict[str, Any]], Any]
    batch_size: int = 100
    maximum_retry_attempts: int = 10
    bisect: bool = True
    failed: List[Dict[str, Any]] = field(default_factory=list)  # the on-failure destination
    _pending: Dict[str, List[Dict[str, Any]]] = field(default_factory=dict)  # read, not yet acknowledged
    _iterators: Dict[str, Optional[str]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def from_spec(cls, streams_client: Any, stream_arn: str, handler: Callable, stream: Mapping[str, Any]) -> "StreamEventSource":
        """Settings from a serverless.yml ``stream`` event."""
        return cls(
            streams_client, stream_arn, handler, batch_size=int(stream.get("batchSize", 100)),
            maximum_retry_attempts=int(stream.get("maximumRetryAttempts", 10)),
            bisect=bool(stream.get("bisectBatchOnFunctionError", False)),
        )

    def _read(self) -> None:
        shards = self.streams_client.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]["Shards"]
        for shard in shards:
            shard_id = shard["ShardId"]
            if shard_id not in self._iterators:
                self._iterators[shard_id] = self.streams_client.get_shard_iterator(
                    StreamArn=self.stream_arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
                )["ShardIterator"]
            iterator = self._iterators[shard_id]
            if iterator is None:
                continue
            reply = self.streams_client.get_records(ShardIterator=iterator, Limit=1000)
            self._iterators[shard_id] = reply.get("NextShardIterator")
            self._pending.setdefault(shard_id, []).extend(lambda_record(r, self.stream_arn) for r in reply["Records"])

    def poll(self) -> int:
        """Read what is new and deliver everything read; the number of records acknowledged."""
        with self._lock:
            self._read()
            done = 0
            for records in self._pending.values():
                done += self._deliver(records)
            return done

    def _deliver(self, records: List[Dict[str, Any]]) -> int:
        done, attempts, size = 0, 0, self.batch_size
        while records:
            batch = records[:size]
            failed_at = self._invoke(batch)
            if failed_at is None:
                del records[:len(batch)]
                done += len(batch)
                attempts, size = 0, self.batch_size
                continue
            del records[:failed_at]  # acknowledged by the partial batch response
            done += failed_at
            attempts += 1
            if self.bisect and size > 1 and failed_at == 0:
                size = max(1, size // 2)  # a batch that keeps failing is split
                continue
            if attempts > self.maximum_retry_attempts:
                log.error("stream record %s failed %d times: parked on the on-failure destination",
                          records[0]["dynamodb"]["SequenceNumber"], attempts)
                self.failed.append(records.pop(0))
                attempts, size = 0, self.batch_size
        return done

    def _invoke(self, batch: List[Dict[str, Any]]) -> Optional[int]:
        """None when the whole batch succeeded, else the index of the first record to retry."""
        try:
            reply = self.handler({"Records": batch})
        except Exception:  # noqa: BLE001 - a function error: the whole batch is retried
            log.exception("stream handler failed")
            return 0
        failures = (reply or {}).get("batchItemFailures") or []
        if not failures:
            return None
        sequences = [str(r["dynamodb"]["SequenceNumber"]) for r in batch]
        named = [sequences.index(f["itemIdentifier"]) for f in failures if f.get("itemIdentifier") in sequences]
        return min(named) if named else 0  # an identifier Lambda cannot match fails the whole batch
