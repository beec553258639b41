"""Lambda memory size on paper, from figures measured in the same `make bench` run.

Lambda gives a function CPU in proportion to its memory: 1,769 MB is one vCPU (AWS Lambda
Developer Guide, "Configuring memory"), so CPU work that takes ``t`` on one core of this machine
takes about ``t * 1769 / MB`` below that size. Network waits do not shrink with memory. This
machine cannot measure Lambda's share, so the figures below are arithmetic over the measured CPU
times and two stated inputs: DynamoDB's in-region round trip (an assumption, not a measurement)
and Lambda's arm64 price. They assume this machine's core runs like a Graviton2 core, and that
init gets the same CPU share as invocations, as documented (any boost Lambda gives to init
only makes cold starts shorter).
"""
from __future__ import annotations

import math
from typing import Dict

ONE_VCPU_MB = 1769  # AWS Lambda: the memory size at which a function has one full vCPU
SIZES_MB = (128, 256, 512, 1024)
DYNAMODB_ROUND_TRIP_MS = 5.0  # assumed in-region network + service time per call (not measured here)
ARM64_GB_SECOND_USD = 0.0000133334  # AWS Lambda arm64 price list (us-east-1), first 7.5 billion GB-s a month
REQUEST_USD = 0.20 / 1e6  # per invocation


def cpu_share(memory_mb: int) -> float:
    return min(1.0, memory_mb / ONE_VCPU_MB)


def cold_start_seconds(cpu_ms: float, memory_mb: int) -> float:
    return cpu_ms / cpu_share(memory_mb) / 1e3


def warm_duration_ms(cpu_ms: float, calls: float, memory_mb: int) -> float:
    return cpu_ms / cpu_share(memory_mb) + calls * DYNAMODB_ROUND_TRIP_MS


def usd_per_million(duration_ms: float, memory_mb: int) -> float:
    billed_seconds = math.ceil(duration_ms) / 1e3  # Lambda bills whole milliseconds
    return 1e6 * (memory_mb / 1024 * billed_seconds * ARM64_GB_SECOND_USD + REQUEST_USD)


def memory_figures(report, cold: Dict, handlers: Dict) -> None:
    """Cold start and warm cost of pay and pay_notify at each size, from the run's medians: warm CPU
    is ours plus botocore's own share of each DynamoDB call (moto's work taken out: on Lambda that
    is DynamoDB's, inside the assumed round trip)."""
    cold_cpu = cold["ours_src"].median + cold["boto3_import"].median + cold["boto3_client"].median
    report.notes.append(
        f"memory on paper (bench/memory.py): CPU share = MB / {ONE_VCPU_MB}; DynamoDB round trip assumed "
        f"{DYNAMODB_ROUND_TRIP_MS:g} ms; cold CPU = pay's cold start as on Lambda + boto3 import + first client "
        f"= {cold_cpu:.0f} ms on one core here")
    for size in SIZES_MB:
        report.add(f"memory {size} MB: cold start CPU (pay)", "s", [cold_start_seconds(cold_cpu, size)], "on paper")
        for name in ("pay", "pay_notify"):
            cpu = handlers[name + "_cpu"].median + handlers[name + "_botocore_cpu"].median
            duration = warm_duration_ms(cpu, handlers[name + "_calls"].median, size)
            report.add(f"memory {size} MB: warm {name}", "ms", [duration], "on paper")
            report.add(f"memory {size} MB: warm {name} per million", "USD", [usd_per_million(duration, size)],
                       "arm64 GB-s + requests, on paper")
