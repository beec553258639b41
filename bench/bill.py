"""``bill N lines: S s`` — one day's bill matched against the Order table on moto, as
bill_reconcile does it in one function: the zip parsed, the day's paid orders read from the
pay-day index, every line the index does not settle read by BatchGetItem, the report put.

The table is filled first (not timed) with N orders paid on the day, so every line is a hit and
the index holds all N: the most the index is read. ``python -m bench.bill [N]`` runs it alone.
The line names the DynamoDB calls made, counted at botocore's ``before-call`` event.
"""
from __future__ import annotations

import os
import sys
import time
from typing import Dict, Tuple

GOAL_SECONDS = 60.0
DAY = "2026-12-01"
TABLE = "bench-Order"
BUCKET = "bench-bills"


class _MotoClock:
    """CPU seconds spent inside moto's request handling (its botocore stubber), all threads summed:
    the emulated DynamoDB's own cost, which the real service does on its side."""

    def __init__(self) -> None:
        import threading

        from moto.core.botocore_stubber import BotocoreStubber

        self.seconds, self._lock, self._cls = 0.0, threading.Lock(), BotocoreStubber
        self._original = BotocoreStubber.__call__

    def __enter__(self) -> "_MotoClock":
        original, clock = self._original, self

        def timed(stubber, *args, **kwargs):
            start = time.thread_time()
            try:
                return original(stubber, *args, **kwargs)
            finally:
                with clock._lock:
                    clock.seconds += time.thread_time() - start

        self._cls.__call__ = timed
        return self

    def __exit__(self, *exc) -> None:
        self._cls.__call__ = self._original


class _Reports:
    """The report's put on moto's S3, as bill_reconcile stores it."""

    def __init__(self, s3) -> None:
        from shared.aws.reports import S3Reports

        self._reports = S3Reports(BUCKET, s3)

    def put(self, day, report):
        return self._reports.put(day, report)


def bill_seconds(lines: int) -> Tuple[float, Dict[str, float], Dict[str, int]]:
    """(total seconds, the parts, DynamoDB calls by operation) for matching a ``lines``-line bill."""
    os.environ.setdefault("AWS_DEFAULT_REGION", "ap-east-1")
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    os.environ["METRICS_DISABLED"] = "1"
    import boto3
    from moto import mock_aws

    from local import bills, schema
    from shared import daily_bill
    from shared.alipay import bill
    from shared.aws import repository
    from shared.domain.orders import PAID, Order

    with mock_aws():
        client = boto3.client("dynamodb", config=repository.DYNAMODB.botocore_config())
        schema.create_order_table(client, TABLE)
        s3 = boto3.client("s3")
        schema.create_report_bucket(s3, BUCKET)
        rows = []
        for n in range(lines):
            order_num, trade_no = f"ORDER_1764547200000_{n:012d}", f"2026120122001400{n:012d}"
            rows.append(bills.Row("交易", trade_no, order_num, "数据恢复产品", f"{DAY} 10:00:00", f"{DAY} 10:00:05", "198.01", "198.01"))
        items = [
            repository._item(Order(r.out_trade_no, "P1", "U1", "数据恢复产品", 19801, status=PAID, order_date=f"{DAY}T10:00:00+08:00",
                                   pay_date=f"{DAY}T10:00:05+08:00", trade_no=r.trade_no))
            for r in rows
        ]
        for start in range(0, len(items), 25):
            client.batch_write_item(RequestItems={TABLE: [{"PutRequest": {"Item": item}} for item in items[start:start + 25]]})
        data = bills.bill_zip(rows, DAY, "2088000000000001")

        store = repository.DynamoOrderRepository(TABLE, client)
        calls: Dict[str, int] = {}

        def count(model, **_):
            calls[model.name] = calls.get(model.name, 0) + 1

        client.meta.events.register("before-call.dynamodb", count)
        with _MotoClock() as moto_clock:
            cpu = time.process_time()
            begin = time.perf_counter()
            parsed = bill.parse_zip(data)
            parsed_at = time.perf_counter()
            result = daily_bill.match(store, DAY, parsed)
            matched_at = time.perf_counter()
            _Reports(s3).put(DAY, result.report())
            end = time.perf_counter()
            cpu = time.process_time() - cpu
        assert result.matched == lines and not result.discrepancies, result.summary()
    return end - begin, {
        "parse": parsed_at - begin, "match": matched_at - parsed_at, "report": end - matched_at, "cpu": cpu,
        "of it in moto": moto_clock.seconds,
    }, calls


def line(lines: int) -> str:
    seconds, parts, calls = bill_seconds(lines)
    detail = ", ".join(f"{name} {value:.1f} s" for name, value in parts.items())
    made = ", ".join(f"{n} {name}" for name, n in sorted(calls.items())) or "none"
    verdict = "" if lines < 100_000 else f"; goal <= {GOAL_SECONDS:g} s: {'met' if seconds <= GOAL_SECONDS else 'MISSED'}"
    load = os.getloadavg()[0]
    return f"bill {lines} lines: {seconds:.1f} s ({detail}; DynamoDB calls: {made}; moto in process, load {load:.1f}{verdict})"


if __name__ == "__main__":
    print(line(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000))
