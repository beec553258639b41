import os
import time
from datetime import datetime, timedelta, timezone

import pytest

from shared.domain import clock


@pytest.mark.parametrize("tz", ["UTC", "America/Los_Angeles", "Asia/Shanghai"])
def test_alipay_timestamp_is_shanghai_whatever_the_process_zone(monkeypatch, tz):
    monkeypatch.setenv("TZ", tz)
    time.tzset()
    try:
        at = datetime(2026, 11, 26, 16, 30, 0, tzinfo=timezone.utc)
        assert clock.alipay_timestamp(at) == "2026-11-27 00:30:00"
        now = clock.alipay_timestamp()
        expected = (datetime.now(timezone.utc) + timedelta(hours=8)).replace(tzinfo=None)
        assert abs(datetime.strptime(now, "%Y-%m-%d %H:%M:%S") - expected) < timedelta(seconds=5)
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError):
        clock.alipay_timestamp(datetime(2026, 1, 1))


def test_alipay_times_read_back_as_shanghai_and_store_as_iso_with_offset():
    at = clock.parse_alipay_time("2026-11-26 21:46:15")
    assert at.utcoffset() == timedelta(hours=8)
    assert clock.iso(at) == "2026-11-26T21:46:15+08:00"
    assert clock.epoch_ms(at) == int(datetime(2026, 11, 26, 13, 46, 15, tzinfo=timezone.utc).timestamp() * 1000)
