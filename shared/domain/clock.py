"""Time as Alipay wants it: Asia/Shanghai wall-clock, whatever the Lambda's TZ (UTC).

The official Python SDK stamps requests with ``datetime.now()``, i.e. the process's local time;
on Lambda that is UTC, eight hours behind what Alipay expects. Shanghai has had no daylight
saving since 1991, so a fixed +08:00 offset is exact and needs no tzdata in the Lambda image.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Optional

SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")
ALIPAY_FORMAT = "%Y-%m-%d %H:%M:%S"


def now() -> datetime:
    """The current instant, as an aware datetime in Shanghai time."""
    return datetime.now(SHANGHAI)


def alipay_timestamp(at: Optional[datetime] = None) -> str:
    """``yyyy-MM-dd HH:mm:ss`` in Shanghai time, for request ``timestamp`` fields."""
    at = now() if at is None else at
    if at.tzinfo is None:
        raise ValueError("naive datetimes are ambiguous; pass an aware datetime")
    return at.astimezone(SHANGHAI).strftime(ALIPAY_FORMAT)


def parse_alipay_time(text: str) -> datetime:
    """Read an Alipay time (``gmt_payment``, ``notify_time``): Shanghai wall-clock.

    ``ValueError`` for anything else, a long text refused before strptime reads (and quotes) it.
    """
    if not isinstance(text, str) or len(text) > len("yyyy-MM-dd HH:mm:ss"):
        raise ValueError(f"not an Alipay time (yyyy-MM-dd HH:mm:ss): {str(text)[:32]!r}")
    return datetime.strptime(text, ALIPAY_FORMAT).replace(tzinfo=SHANGHAI)


def iso(at: Optional[datetime] = None) -> str:
    """ISO 8601 with offset, for dates stored in DynamoDB (``orderDate``, ``payDate``)."""
    at = now() if at is None else at
    return at.astimezone(SHANGHAI).isoformat(timespec="seconds")


def epoch_ms(at: Optional[datetime] = None) -> int:
    """Milliseconds since the epoch, for ``ORDER_<ms>_<random>`` trade numbers."""
    at = now() if at is None else at
    return int(at.timestamp() * 1000)
