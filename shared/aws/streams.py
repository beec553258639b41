"""DynamoDB Streams records of the Order table, as Lambda's event source mapping delivers them.

Each record carries the row before and after one write (``StreamViewType: NEW_AND_OLD_IMAGES``)
and the write's time; ``SequenceNumber`` is what a partial batch response names to be retried.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Dict, Mapping, Optional

from ..domain import clock
from ..domain.orders import Order
from .repository import order_from_image


class MalformedRecord(ValueError):
    """A stream record we cannot read: reported as failed, so Lambda retries, bisects, then parks it."""


@dataclass(frozen=True)
class OrderChange:
    sequence_number: str
    before: Optional[Order]
    after: Optional[Order]
    at: str  # the write's approximate time, ISO 8601 in Asia/Shanghai


def order_change(record: Mapping[str, Any]) -> OrderChange:
    """One record of ``event["Records"]``."""
    try:
        data = record["dynamodb"]
        sequence = str(data["SequenceNumber"])
    except (KeyError, TypeError):
        raise MalformedRecord("not a DynamoDB stream record") from None
    try:
        created = data.get("ApproximateCreationDateTime")
        at = clock.iso(datetime.fromtimestamp(float(created), clock.SHANGHAI)) if created is not None else clock.iso()
        return OrderChange(sequence, order_from_image(data.get("OldImage")), order_from_image(data.get("NewImage")), at)
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise MalformedRecord(f"record {sequence}: {type(exc).__name__}") from None


def lambda_record(record: Mapping[str, Any], stream_arn: str) -> Dict[str, Any]:
    """A boto3 ``get_records`` record as Lambda's event carries it (JSON: no datetime objects)."""
    data = dict(record["dynamodb"])
    created = data.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        data["ApproximateCreationDateTime"] = int(created.timestamp())
    return {
        "eventID": record.get("eventID"), "eventName": record.get("eventName"), "eventVersion": "1.1",
        "eventSource": "aws:dynamodb", "awsRegion": record.get("awsRegion"), "dynamodb": data,
        "eventSourceARN": stream_arn,
    }
