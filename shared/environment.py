"""Reading the process environment: the one error a bad setting raises, and whole-number settings.

The lowest module of the use-case layer: config, secrets and reconcile read settings through it,
and it imports nothing of shared/, so none of them has to import another for its error.
"""
from __future__ import annotations

import re
from typing import Mapping, Optional


class ConfigError(RuntimeError):
    """A configuration variable is missing or malformed. ``variable`` names it; no value leaks."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"configuration {variable} is {problem}")
        self.variable = variable


_WHOLE_NUMBER = re.compile(r"[0-9]{1,9}")


def int_setting(env: Mapping[str, str], name: str, default: int, *, minimum: int = 0, maximum: Optional[int] = None) -> int:
    """An optional whole-number setting (seconds, counts): ASCII digits within bounds, else ``ConfigError``."""
    text = env.get(name, "").strip()
    if not text:
        return int(default)
    value = int(text) if _WHOLE_NUMBER.fullmatch(text) else None
    if value is None or value < minimum or (maximum is not None and value > maximum):
        bounds = f"{minimum} to {maximum}" if maximum is not None else f">= {minimum}"
        raise ConfigError(name, f"malformed (expected a whole number {bounds})")
    return value


_SECONDS = re.compile(r"[0-9]{1,4}(\.[0-9]{1,3})?")


def seconds_setting(env: Mapping[str, str], name: str, default: float, *, minimum: float, maximum: float) -> float:
    """An optional duration in seconds (``3`` or ``0.25``) within bounds, else ``ConfigError``."""
    text = env.get(name, "").strip()
    if not text:
        return float(default)
    value = float(text) if _SECONDS.fullmatch(text) else None
    if value is None or not minimum <= value <= maximum:
        raise ConfigError(name, f"malformed (expected seconds from {minimum:g} to {maximum:g})")
    return value
