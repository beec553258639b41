"""Fault injection for tests: the faults themselves live in local/faults.py (the local stack's
``POST /local/faults`` arms the same ones); here, botocore's backoff recorded instead of slept.
"""
from __future__ import annotations

import types
from typing import List

import botocore.endpoint
import pytest

from local.faults import (  # noqa: F401 - the tests' names for them
    CONNECT_TIMEOUT, INTERNAL_ERROR, READ_TIMEOUT, THROTTLED, THROTTLING, UNAVAILABLE, UNSERVED, Faults,
)


class Sleeps:
    """Stands in for botocore's ``time.sleep`` between retries: records, never waits."""

    def __init__(self) -> None:
        self.delays: List[float] = []

    def sleep(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
def sleeps(monkeypatch) -> Sleeps:
    """botocore's backoff between retries, recorded instead of slept (import it into a test module)."""
    recorder = Sleeps()
    monkeypatch.setattr(botocore.endpoint, "time", types.SimpleNamespace(sleep=recorder.sleep))
    return recorder
