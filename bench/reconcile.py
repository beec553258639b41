"""Reconciliation at shop scale, on the local stack's code: moto's DynamoDB, the Alipay emulator
answering every gateway call 100 ms late (``SANDBOX_GATEWAY_LATENCY_MS``, as from AWS to Alipay),
the scheduled ``reconcile`` fanning out to one ``reconcile_worker`` per shard through Lambda's
Invoke API (each worker a thread here, with its own Lambda timeout from serverless.yml).

Every order is seeded due and paid at Alipay with its notify lost, the case the issue names (a
notify endpoint down for an hour). Two figures:

- ``reconcile throughput``: orders settled per second by one scheduled pass (dispatch to the
  last worker's end), in steady state: the first ``WARM`` orders of the pass are not counted;
- ``reconcile backlog 10000``: seconds from the first scheduled pass until 10,000 due orders are
  all settled, with EventBridge's ``rate(5 minutes)`` running the next passes.

Everything runs in this one process (moto, the emulator, eight workers sharing the GIL), where on
AWS each worker has its own container: a floor for the deployed figure, not its ceiling. The local
order-events pipeline is stopped for the run: on AWS it is its own function, off reconcile's CPU.
"""
from __future__ import annotations

import logging
import os
import sys
import threading
import time
from datetime import timedelta
from typing import Callable, Dict, List, Optional, Tuple

LATENCY_MS = "100"
SCHEDULE_SECONDS = 300.0  # serverless.yml: rate(5 minutes)


def _seed(stack, count: int, prefix: str) -> List[str]:
    """``count`` orders due now, each paid at Alipay (the emulator's ledger) and unknown here as paid."""
    from local.ledger import TRADE_SUCCESS, Trade
    from local.run import APP_ID, ORDER_TABLE, SELLER_ID
    from shared.aws.repository import order_repository
    from shared.domain import clock
    from shared.domain.orders import Order

    store, ledger = order_repository(ORDER_TABLE), stack.server.sandbox.ledger
    created = clock.now() - timedelta(hours=1)
    numbers = [f"ORDER_{prefix}_{i:06d}" for i in range(count)]
    for i, order_num in enumerate(numbers):
        store.create(Order(order_num, "P1", "U1", "bench", 1990, order_date=clock.iso(created),
                           reconcile_at=clock.iso(created + timedelta(minutes=5, microseconds=i))))
        ledger.add(Trade(out_trade_no=order_num, trade_no=ledger.new_trade_no(), app_id=APP_ID, seller_id=SELLER_ID,
                         total_amount="19.90", subject="bench", product_code="QUICK_MSECURITY_PAY", notify_url=None,
                         status=TRADE_SUCCESS, gmt_payment=clock.alipay_timestamp()))
    return numbers


class _Settled:
    """Counts the orders reconcile marks paid, as they are marked (the transition's own log line)."""

    def __init__(self) -> None:
        self.count, self.times = 0, []  # type: Tuple[int, List[float]]
        self._lock = threading.Lock()
        self.handler = logging.Handler()
        self.handler.emit = self._emit  # type: ignore[method-assign]

    def _emit(self, record: logging.LogRecord) -> None:
        if record.name == "shared.reconcile" and record.getMessage().endswith("-> TRADE_SUCCESS"):
            with self._lock:
                self.count += 1
                self.times.append(time.perf_counter())

    def wait_for(self, total: int, timeout: float, tick: Optional[Callable[[float], None]] = None) -> bool:
        """Until ``total`` are settled (True), or ``timeout``, or, without ``tick`` (one pass), until
        every worker has ended (False)."""
        start = time.perf_counter()
        while self.count < total:
            elapsed = time.perf_counter() - start
            if elapsed > timeout:
                return False
            if tick:
                tick(elapsed)
            elif elapsed > 1 and not _workers():
                return self.count >= total
            time.sleep(0.05)
        return True


def _workers() -> List[threading.Thread]:
    """The workers still running (local/lambda_api.py names their threads)."""
    return [t for t in threading.enumerate() if t.name.startswith("invoke-")]


def run(quick: bool = False) -> Dict[str, float]:
    """Both figures; quick mode (the smoke test) with small counts, same code path."""
    from local.run import LocalStack
    from local.schedule import scheduled_event
    from local.server import functions

    throughput_orders, warm, backlog_orders = (160, 40, 200) if quick else (2000, 300, 10000)
    saved = dict(os.environ)
    os.environ.update(SANDBOX_GATEWAY_LATENCY_MS=LATENCY_MS, RECONCILE_INTERVAL_SECONDS="0", METRICS_DISABLED="1")
    settled = _Settled()
    reconcile_log = logging.getLogger("shared.reconcile")
    saved_level, saved_propagate = reconcile_log.level, reconcile_log.propagate
    reconcile_log.addHandler(settled.handler)
    reconcile_log.setLevel(logging.INFO)
    reconcile_log.propagate = False  # counted, not printed; its warnings and errors are
    shown = logging.StreamHandler(sys.stderr)
    shown.setLevel(logging.WARNING)
    reconcile_log.addHandler(shown)
    quiet = [logging.getLogger(name) for name in ("local", "local.server", "local.lambda_api", "functions", "botocore")]
    quiet_levels = [(log, log.level) for log in quiet]
    for log in quiet:
        log.setLevel(logging.ERROR)
    stack = LocalStack(port=0).start()
    for pipeline in getattr(stack, "pipelines", []):  # order events: their own Lambda on AWS, not reconcile's CPU
        pipeline.stop()
    try:
        dispatcher = functions()["reconcile"]

        def schedule() -> None:
            dispatcher.invoke(scheduled_event(dispatcher))

        _seed(stack, throughput_orders, "T")
        start = time.perf_counter()
        schedule()
        settled.wait_for(throughput_orders, timeout=600)  # a look in error waits for a later pass
        if settled.count <= warm + 1:
            raise RuntimeError(f"one pass settled only {settled.count} of {throughput_orders} orders")
        times = settled.times[warm:]
        throughput = (len(times) - 1) / (times[-1] - times[0])
        for worker in _workers():
            worker.join(timeout=180)

        settled.count, settled.times = 0, []
        _seed(stack, backlog_orders, "B")
        passes = [0.0]
        start = time.perf_counter()
        schedule()

        def tick(elapsed: float) -> None:  # EventBridge: the next pass 5 minutes after the last
            if elapsed >= passes[-1] + SCHEDULE_SECONDS:
                passes.append(passes[-1] + SCHEDULE_SECONDS)
                schedule()

        if not settled.wait_for(backlog_orders, timeout=4 * SCHEDULE_SECONDS, tick=tick):
            raise RuntimeError(f"the backlog was not settled within four passes ({settled.count} of {backlog_orders})")
        backlog = settled.times[-1] - start
    finally:
        for worker in _workers():
            worker.join(timeout=180)  # a worker still finishing its pass: let it end before the stack does
        stack.stop()
        reconcile_log.removeHandler(settled.handler)
        reconcile_log.removeHandler(shown)
        reconcile_log.setLevel(saved_level)
        reconcile_log.propagate = saved_propagate
        for log, level in quiet_levels:
            log.setLevel(level)
        os.environ.clear()
        os.environ.update(saved)
    return {"throughput": throughput, "backlog": backlog, "backlog_orders": backlog_orders,
            "passes": len(passes), "throughput_orders": throughput_orders}


def print_figures(figures: Dict[str, float]) -> None:
    """The issue's two lines, exactly (the backlog's count is 10000 unless --quick)."""
    print(f"reconcile throughput: {figures['throughput']:.0f} orders/s")
    print(f"reconcile backlog {figures['backlog_orders']:.0f}: {figures['backlog']:.0f} s")


if __name__ == "__main__":
    print_figures(run(quick="--quick" in sys.argv))
