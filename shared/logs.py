"""Structured JSON logs: one object per line, carrying the request id and the orderNum.

A stdlib ``logging.Formatter`` rather than AWS Lambda Powertools' Logger: the output is the same
kind of line (``level``, ``message``, ``timestamp``, ``service``, ``function_request_id``, plus our
keys) for about fifty lines of code, and the Lambda package keeps a single runtime dependency.
The request's keys live in a ``ContextVar`` that ``api.endpoint`` resets for every invocation.

Key material never reaches a log line: nothing here logs a key, and as a second line of defence
every formatted line is scrubbed of PEM armour and long base64 runs (a 2048-bit key's body is
1,600+ base64 characters; botocore's DEBUG log of an SSM answer would otherwise carry one).
"""
from __future__ import annotations

import contextvars
import json
import logging
import os
import re
from datetime import datetime, timezone
from typing import Any, Dict

_context: contextvars.ContextVar[Dict[str, Any]] = contextvars.ContextVar("log_context", default={})

# Attributes every LogRecord has; anything else came from ``extra=`` and is logged as a key.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}
_PEM_BLOCK = re.compile(r"-----BEGIN [A-Z0-9 ]*-----.*?(-----END [A-Z0-9 ]*-----|$)", re.DOTALL)
_PEM_ARMOUR = re.compile(r"-----(BEGIN|END) [A-Z0-9 ]*-----")
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/]{60,}={0,2}")
REDACTED = "[redacted]"


def scrub(text: str) -> str:
    """Remove whole PEM blocks (newlines real or escaped), stray armour lines, and base64 runs
    of 60+ characters (a bare key body is one such run; a PEM line is 64)."""
    text = _PEM_ARMOUR.sub(REDACTED, _PEM_BLOCK.sub(REDACTED, text))
    return _BASE64_RUN.sub(REDACTED, text)


def bind(**values: Any) -> None:
    """Add keys (``order_num=...``) to every later log line of this invocation."""
    _context.set({**_context.get(), **{k: v for k, v in values.items() if v is not None}})


def current() -> Dict[str, Any]:
    """The keys bound for this invocation (a copy), e.g. for a local formatter."""
    return dict(_context.get())


def clear(**values: Any) -> None:
    """Start a new invocation's context with ``values`` only."""
    _context.set({k: v for k, v in values.items() if v is not None})


class JsonFormatter(logging.Formatter):
    """``{"timestamp", "level", "logger", "message", ...context, ...extra, "exception"?}``."""

    def __init__(self, service: str = "") -> None:
        super().__init__()
        self.service = service or os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "alipay-app-pay")

    def format(self, record: logging.LogRecord) -> str:
        line: Dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "service": self.service,
            **_context.get(),
        }
        line.update({k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return scrub(json.dumps(line, ensure_ascii=False, default=str))


def setup(level: str = "INFO") -> None:
    """JSON lines on Lambda (the runtime's own root handler gets our formatter) and wherever no
    handler is installed yet; a host that set up logging itself (pytest) keeps its handlers."""
    root = logging.getLogger()
    root.setLevel(level.upper())
    if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
        for handler in root.handlers:
            handler.setFormatter(JsonFormatter())
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)
