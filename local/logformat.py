"""Readable local logs: one short line per event for the person watching ``make run``.

``08:26:06 ORDER_1796171165717_k36mo9o2acdq ¥12.50 pay_notify  notify … -> success (TRADE_SUCCESS: applied)``:
the time in Asia/Shanghai (Alipay's clock, whatever the machine's TZ), the order number and amount
when the line has them (the keys ``order_num`` / ``total_amount`` the functions bind for their
JSON lines), which part spoke, and what happened. The JSON lines stay exactly what Lambda logs:
``LOG_FORMAT=json make run`` shows them instead, with the EMF metric lines, which readable mode
shortens to one line each too. Key material is scrubbed as in the JSON lines.
"""
from __future__ import annotations

import json
import logging
import re
import sys
from datetime import datetime
from typing import Optional

from shared import logs
from shared.domain import clock

ACCESS = re.compile(r'^\S+ "(?P<method>[A-Z]+) (?P<path>[^ ?"]*)[^"]*" (?P<status>\d{3})')
LEVELS = {"WARNING": "WARN ", "ERROR": "ERROR ", "CRITICAL": "ERROR "}


def source(logger: str) -> str:
    """``functions.pay_notify.handler`` -> ``pay_notify``; ``shared.reconcile`` -> ``reconcile``;
    ``local.notifier`` -> ``alipay`` (the emulator's notify sender); ``local.server`` -> ``http``."""
    parts = logger.split(".")
    if parts[0] == "functions" and len(parts) > 1:
        return parts[1]
    if logger in ("local.server", "local"):
        return "http"
    if logger.startswith(("local.notifier", "local.sandbox", "local.cashier")):
        return "alipay"
    return parts[-1]


class ReadableFormatter(logging.Formatter):
    """``HH:MM:SS <order or -> [¥amount] <source>  <message>`` (an exception's type and message end
    the line; its traceback follows on its own lines)."""

    def format(self, record: logging.LogRecord) -> str:
        values = {**logs.current(), **vars(record)}
        at = clock.alipay_timestamp(datetime.fromtimestamp(record.created, clock.SHANGHAI))[11:]
        order = values.get("order_num") or "-"
        amount = f" ¥{values['total_amount']}" if values.get("total_amount") else ""
        message = record.getMessage()
        access = ACCESS.match(message) if record.name == "local.server" else None
        if access:  # the access log: method, path (the query may carry a signature) and status
            message = f"{access['method']} {access['path']} → {access['status']}"
            if order not in message:  # keys bound by an earlier request on this connection's thread
                order, amount = "-", ""
        line = f"{at} {order}{amount} {source(record.name)}  {LEVELS.get(record.levelname, '')}{message}"
        if record.exc_info:  # what failed on the line itself, the traceback below it
            error = record.exc_info[1]
            line += f" — {type(error).__name__}: {error}".rstrip() + "\n" + self.formatException(record.exc_info)
        return logs.scrub(line)


def quiet_access(record: logging.LogRecord) -> bool:
    """Drop the access line of a request that went well (the functions log what it did); keep
    4xx/5xx ones. ``LOG_LEVEL=DEBUG`` keeps them all."""
    if record.name != "local.server" or logging.getLogger().level <= logging.DEBUG:
        return True
    access = ACCESS.match(record.getMessage())
    return access is None or access["status"] >= "400"


def install(log_format: Optional[str]) -> None:
    """Readable lines on every root handler, or the Lambda JSON lines for ``LOG_FORMAT=json``."""
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.StreamHandler())
    json_lines = (log_format or "").lower() == "json"
    if not json_lines and not isinstance(sys.stdout, ReadableMetrics):
        sys.stdout = ReadableMetrics(sys.stdout)
    formatter = logs.JsonFormatter() if json_lines else ReadableFormatter()
    for handler in root.handlers:
        handler.setFormatter(formatter)
        handler.removeFilter(quiet_access)
        if not json_lines:
            handler.addFilter(quiet_access)


class ReadableMetrics:
    """stdout for ``make run``: an EMF line (``shared/aws/metrics.py``, what CloudWatch reads on
    Lambda) becomes ``08:46:00 - metrics  pay_notify Notify=1 NotifyFail=0 (Outcome applied)``;
    every other line passes through unchanged."""

    def __init__(self, stream) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        if text.startswith('{"_aws"'):
            try:
                text = metrics_line(json.loads(text)) + ("\n" if text.endswith("\n") else "")
            except (ValueError, KeyError, TypeError, IndexError):
                pass  # not one of ours after all: shown as it is
        return self.stream.write(text)

    def __getattr__(self, name: str):
        return getattr(self.stream, name)


def metrics_line(doc: dict) -> str:
    directive = doc["_aws"]["CloudWatchMetrics"][0]
    names = [m["Name"] for m in directive["Metrics"]]
    dimensions = sorted({d for group in directive["Dimensions"] for d in group} - {"Service"})
    at = clock.alipay_timestamp(datetime.fromtimestamp(doc["_aws"]["Timestamp"] / 1000, clock.SHANGHAI))[11:]
    values = " ".join(f"{name}={doc[name]}" for name in names)
    where = f" ({', '.join(f'{d} {doc[d]}' for d in dimensions)})" if dimensions else ""
    order = doc.get("order_num") or doc.get("orderNum") or "-"
    return f"{at} {order} metrics  {doc.get('Service', '')} {values}{where}"
