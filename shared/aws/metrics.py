"""CloudWatch metrics as Embedded Metric Format (EMF) log lines: no API call, no dependency.

Lambda sends a function's stdout to CloudWatch Logs, which turns every line shaped as below into
metric data points (AWS's "Embedded metric format specification"), as AWS Lambda Powertools'
``Metrics`` does. One ``emit`` is one line; its metrics share its dimensions, and are published
twice: under ``Service`` alone (the totals an alarm sums) and under ``Service`` plus the given
dimensions (the breakdown), so no alarm needs to add up dimension values.

    {"_aws": {"Timestamp": 1764633600000, "CloudWatchMetrics": [{"Namespace": "alipay-app-pay",
      "Dimensions": [["Service"], ["Service", "Outcome"]], "Metrics": [{"Name": "Notify", "Unit": "Count"}]}]},
     "Service": "pay_notify", "Outcome": "applied", "Notify": 1}

The namespace is ``METRICS_NAMESPACE`` (serverless.yml sets it per stage); ``Service`` is the
function's short name. ``METRICS_DISABLED=1`` silences the lines (benchmarks).
"""
from __future__ import annotations

import json
import os
import sys
import time
from typing import IO, Any, Dict, Mapping, Optional, Tuple, Union

NAMESPACE_VARIABLE = "METRICS_NAMESPACE"
DEFAULT_NAMESPACE = "alipay-app-pay"
UNITS = frozenset({"Count", "Seconds", "Milliseconds", "None", "Percent", "Bytes"})
MAX_METRICS = 100  # EMF's limit per document
MAX_DIMENSIONS = 30

Value = Union[int, float]


def service_name() -> str:
    """The function's short name: ``pay_notify`` of ``alipay-app-pay-prod-pay_notify``."""
    name = os.environ.get("METRICS_SERVICE") or os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "local")
    return name.rsplit("-", 1)[-1]


def document(
    metrics: Mapping[str, Union[Value, Tuple[Value, str]]],
    *,
    dimensions: Optional[Mapping[str, str]] = None,
    properties: Optional[Mapping[str, Any]] = None,
    namespace: Optional[str] = None,
    timestamp_ms: Optional[int] = None,
) -> Dict[str, Any]:
    """The EMF object for ``metrics`` (name -> value, or (value, unit); unit ``Count`` by default)."""
    if not metrics or len(metrics) > MAX_METRICS:
        raise ValueError(f"an EMF document holds 1 to {MAX_METRICS} metrics")
    dims = {"Service": service_name(), **(dimensions or {})}
    if len(dims) > MAX_DIMENSIONS:
        raise ValueError(f"an EMF dimension set holds at most {MAX_DIMENSIONS} dimensions")
    declared, values = [], {}
    for name, given in metrics.items():
        value, unit = given if isinstance(given, tuple) else (given, "Count")
        if unit not in UNITS:
            raise ValueError(f"unknown unit {unit!r}")
        declared.append({"Name": name, "Unit": unit})
        values[name] = value
    clashes = set(values) & (set(dims) | set(properties or {}))
    if clashes:
        raise ValueError(f"metric names clash with dimensions or properties: {sorted(clashes)}")
    return {
        "_aws": {
            "Timestamp": int(time.time() * 1000) if timestamp_ms is None else timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": namespace or os.environ.get(NAMESPACE_VARIABLE) or DEFAULT_NAMESPACE,
                "Dimensions": [["Service"], list(dims)] if len(dims) > 1 else [["Service"]],
                "Metrics": declared,
            }],
        },
        **(properties or {}),
        **{k: str(v) for k, v in dims.items()},
        **values,
    }


def emit(
    metrics: Mapping[str, Union[Value, Tuple[Value, str]]],
    *,
    dimensions: Optional[Mapping[str, str]] = None,
    properties: Optional[Mapping[str, Any]] = None,
    stream: Optional[IO[str]] = None,
) -> Dict[str, Any]:
    """Print one EMF line (to stdout, where Lambda's log capture finds it) and return it."""
    doc = document(metrics, dimensions=dimensions, properties=properties)
    if os.environ.get("METRICS_DISABLED") != "1":
        print(json.dumps(doc, ensure_ascii=False, separators=(",", ":"), default=str), file=stream or sys.stdout, flush=True)
    return doc
