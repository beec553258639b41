"""make run's readable log lines (local/logformat.py), and LOG_FORMAT=json keeping Lambda's lines."""
from __future__ import annotations

import io
import json
import logging
import sys
import time

import pytest

from local import logformat
from shared import logs


def record(name: str, message: str, level: int = logging.INFO, created: float = 0.0, **extra) -> logging.LogRecord:
    rec = logging.LogRecord(name, level, __file__, 1, message, None, None)
    rec.created = created
    rec.__dict__.update(extra)
    return rec


@pytest.fixture(autouse=True)
def fresh_context():
    logs.clear()
    yield
    logs.clear()


@pytest.mark.parametrize("tz", ["UTC", "America/Los_Angeles", "Asia/Shanghai"])
def test_a_line_is_shanghai_time_order_amount_source_and_what_happened(monkeypatch, tz):
    monkeypatch.setenv("TZ", tz)
    time.tzset()
    try:
        line = logformat.ReadableFormatter().format(record(
            "functions.pay_notify.handler", "notify -> success (TRADE_SUCCESS: applied)", created=1796171165.0,
            order_num="ORDER_1796171165717_k36mo9o2acdq", total_amount="12.50",
        ))
    finally:
        monkeypatch.undo()
        time.tzset()
    # 1796171165 is 2026-12-02 00:26:05 UTC, 08:26:05 in Shanghai
    assert line == "08:26:05 ORDER_1796171165717_k36mo9o2acdq ¥12.50 pay_notify  notify -> success (TRADE_SUCCESS: applied)"


def test_the_invocations_bound_keys_are_used_and_levels_and_tracebacks_shown():
    logs.clear(order_num="ORDER_1796171165717_aaaaaaaaaaaa", total_amount="0.01")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        import sys

        rec = record("shared.payments", "payment failed", logging.ERROR)
        rec.exc_info = sys.exc_info()
    line = logformat.ReadableFormatter().format(rec)
    first, *rest = line.splitlines()
    assert first == "08:00:00 ORDER_1796171165717_aaaaaaaaaaaa ¥0.01 payments  ERROR payment failed — RuntimeError: boom"
    assert rest[-1] == "RuntimeError: boom"


def test_an_access_line_is_short_and_never_carries_the_query_or_a_stale_order():
    logs.clear(order_num="ORDER_1796171165717_aaaaaaaaaaaa", total_amount="0.01")  # a previous request's keys
    line = logformat.ReadableFormatter().format(record(
        "local.server", '127.0.0.1 "GET /pay/return?out_trade_no=X&sign=' + "A" * 300 + ' HTTP/1.1" 200 -'
    ))
    assert line == "08:00:00 - http  GET /pay/return → 200"
    mine = logformat.ReadableFormatter().format(record(
        "local.server", '127.0.0.1 "GET /checkout/orders/ORDER_1796171165717_aaaaaaaaaaaa HTTP/1.1" 404 -'
    ))
    assert mine.startswith("08:00:00 ORDER_1796171165717_aaaaaaaaaaaa ¥0.01 http  GET /checkout/orders/")


def test_successful_access_lines_are_dropped_unless_debug_and_failures_kept():
    ok = record("local.server", '127.0.0.1 "POST /pay HTTP/1.1" 200 -')
    refused = record("local.server", '127.0.0.1 "POST /pay HTTP/1.1" 400 -')
    other = record("functions.pay.handler", "refused 400: total_amount is missing")
    assert [logformat.quiet_access(r) for r in (ok, refused, other)] == [False, True, True]


def test_key_material_is_scrubbed_as_in_the_json_lines():
    line = logformat.ReadableFormatter().format(record("shared.secrets", "got -----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----"))
    assert "MIIE" not in line and logs.REDACTED in line


@pytest.mark.parametrize("fmt, readable", [(None, True), ("", True), ("json", False), ("JSON", False)])
def test_install_puts_readable_or_lambda_json_lines_on_the_root_handlers(fmt, readable, monkeypatch):
    monkeypatch.setattr(sys, "stdout", sys.stdout)  # install() wraps stdout for EMF lines: restored after
    root = logging.getLogger()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    saved = root.handlers[:]
    root.handlers[:] = [handler]
    try:
        logformat.install(fmt)
        logging.getLogger("functions.pay.handler").warning("payment issued", extra={"order_num": "ORDER_1_x"})
    finally:
        root.handlers[:] = saved
    text = stream.getvalue().strip()
    assert isinstance(sys.stdout, logformat.ReadableMetrics) == readable
    if readable:
        assert text.endswith(" ORDER_1_x pay  WARN payment issued")
    else:
        line = json.loads(text)
        assert (line["message"], line["order_num"], line["level"]) == ("payment issued", "ORDER_1_x", "WARNING")


def test_an_emf_line_becomes_one_readable_line_and_other_output_passes(monkeypatch):
    from shared.aws import metrics

    monkeypatch.setenv("METRICS_SERVICE", "pay_notify")
    out = io.StringIO()
    readable = logformat.ReadableMetrics(out)
    doc = metrics.emit({"Notify": 1, "NotifyFail": 0}, dimensions={"Outcome": "applied"}, stream=readable)
    readable.write("a banner line\n")
    readable.write('{"_aws": not json\n')
    first, second, third = out.getvalue().splitlines()
    at = logformat.ReadableFormatter().format(record("x", "", created=doc["_aws"]["Timestamp"] / 1000))[:8]
    assert first == f"{at} - metrics  pay_notify Notify=1 NotifyFail=0 (Outcome applied)"
    assert (second, third) == ("a banner line", '{"_aws": not json')
