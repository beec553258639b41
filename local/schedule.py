"""EventBridge schedules for the local stack: every ``schedule: rate(...)`` event in serverless.yml
runs its function on a timer thread, with the event EventBridge would send.

``<FUNCTION>_INTERVAL_SECONDS`` in the environment of ``make run`` overrides a rate (e.g.
``RECONCILE_INTERVAL_SECONDS=5`` for a demo); ``0`` turns the schedule off.
"""
from __future__ import annotations

import logging
import re
import threading
import uuid
from typing import Any, Dict, List, Mapping, Optional

from shared.domain import clock

from local.server import Function

log = logging.getLogger(__name__)

_UNITS = {"minute": 60, "minutes": 60, "hour": 3600, "hours": 3600, "day": 86400, "days": 86400}


def rate_seconds(expression: str) -> float:
    """``rate(5 minutes)`` -> 300.0 (EventBridge's rate syntax)."""
    match = re.fullmatch(r"rate\(\s*(\d+)\s+(minutes?|hours?|days?)\s*\)", expression.strip())
    if not match:
        raise ValueError(f"unsupported schedule {expression!r}; use rate(N minutes|hours|days)")
    return int(match.group(1)) * _UNITS[match.group(2)]


def interval(function: Function, environ: Mapping[str, str]) -> Optional[float]:
    """Seconds between runs of ``function``, or None when it has no (enabled) schedule."""
    override = environ.get(f"{function.name.upper()}_INTERVAL_SECONDS", "").strip()
    if override:
        seconds = float(override)
        return seconds if seconds > 0 else None
    # cron(...) schedules (e.g. bill_reconcile's daily run) have no local timer: invoke them
    # with make invoke, or give them one with <FUNCTION>_INTERVAL_SECONDS.
    return min((rate_seconds(rate) for rate in function.schedules if not rate.strip().startswith("cron(")), default=None)


def scheduled_event(function: Function) -> Dict[str, Any]:
    """What EventBridge passes to a scheduled Lambda."""
    return {
        "version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
        "account": "000000000000", "time": clock.now().astimezone().isoformat(timespec="seconds"),
        "region": "local", "resources": [f"arn:aws:events:local:000000000000:rule/{function.name}"], "detail": {},
    }


class Schedule:
    """Runs one function every ``seconds`` until stopped; a failing run is logged, never fatal."""

    def __init__(self, function: Function, seconds: float) -> None:
        self.function, self.seconds = function, seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"schedule-{function.name}", daemon=True)

    def start(self) -> "Schedule":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)  # a daemon thread: a pass still running is abandoned at exit

    def _loop(self) -> None:
        while not self._stop.wait(self.seconds):
            try:
                log.info("schedule %s -> %s", self.function.name, self.function.invoke(scheduled_event(self.function)))
            except Exception:  # noqa: BLE001 - EventBridge would simply try again next time
                log.exception("scheduled %s failed", self.function.name)


def start_schedules(functions: Mapping[str, Function], environ: Mapping[str, str]) -> List[Schedule]:
    return [Schedule(f, s).start() for f in functions.values() if (s := interval(f, environ)) is not None]
