"""What each invocation of pay and pay_notify ended in, as one EMF metrics line.

A ``fail`` notify is an HTTP 200 and a refused payment a handled reply, so no Lambda metric moves
when they happen: these lines are how they are heard (alarms in serverless.yml, README "Metrics").

One place prints them: ``api.endpoint(report=...)`` calls the function's report once per
invocation, whatever happened — a reply, a refusal, a configuration error, a crash. What happened
is noted where it is known (``note``: the use case's outcome, the endpoint's failure), in a
per-invocation context, so a report needs neither the handler's locals nor a second code path.

- pay_notify: ``Notify`` (Count, dimension ``Outcome``: applied | duplicate | bad_signature |
  not_ours | amount_mismatch | unknown_order | malformed | error) and ``NotifyFail`` (1 when the
  answer was ``fail``, else 0) on the same line.
- pay: ``PaymentCreated`` (dimension ``Channel``) or ``PaymentRefused`` (dimension ``Reason``:
  ``RequestRefused.reason`` — invalid_input | price | not_the_caller | unknown_order | not_payable
  | idempotency_key — or alipay_refused | configuration | error).
"""
from __future__ import annotations

import logging
from contextvars import ContextVar
from typing import Any, Callable, Dict, Mapping, Optional

from .aws import metrics

Report = Callable[[Mapping[str, Any], Mapping[str, str]], None]

APPLIED, DUPLICATE, BAD_SIGNATURE, NOT_OURS = "applied", "duplicate", "bad_signature", "not_ours"
AMOUNT_MISMATCH, UNKNOWN_ORDER, MALFORMED, ERROR = "amount_mismatch", "unknown_order", "malformed", "error"
NOTIFY_OUTCOMES = (APPLIED, DUPLICATE, BAD_SIGNATURE, NOT_OURS, AMOUNT_MISMATCH, UNKNOWN_ORDER, MALFORMED, ERROR)
ALIPAY_REFUSED = "alipay_refused"  # precreate: Alipay refused or could not be reached (502)
CONFIGURATION = "configuration"  # a failure the endpoint saw before the handler ran

log = logging.getLogger(__name__)

_facts: ContextVar[Optional[Dict[str, str]]] = ContextVar("telemetry_facts", default=None)


def note(**facts: str) -> None:
    """Record what this invocation did (outside an invocation: ignored)."""
    current = _facts.get()
    if current is not None:
        current.update(facts)


def metered(report: Optional[Report], answer: Callable[[], Mapping[str, Any]]) -> Mapping[str, Any]:
    """Run ``answer`` (the endpoint's whole invocation) with fresh facts, then ``report`` its line."""
    token = _facts.set({})
    try:
        reply = answer()
        if report is not None:
            try:
                report(reply, _facts.get() or {})
            except Exception:  # noqa: BLE001 - a metrics line never costs the caller its answer
                log.exception("metrics line not written")
        return reply
    finally:
        _facts.reset(token)


def notify_report(reply: Mapping[str, Any], facts: Mapping[str, str]) -> None:
    """pay_notify's line. No outcome noted means the endpoint answered: a refused body (bad
    base64) is ``malformed``; a configuration error or a crash (DynamoDB down) is ``error``."""
    failed = 0 if reply.get("body") == "success" else 1
    outcome = facts.get("outcome") or (ERROR if facts.get("reason", ERROR) in (ERROR, CONFIGURATION) else MALFORMED)
    metrics.emit({"Notify": 1, "NotifyFail": failed}, dimensions={"Outcome": outcome},
                 properties=_order(facts))


def payment_report(reply: Mapping[str, Any], facts: Mapping[str, str]) -> None:
    """pay's line: created (by channel) on a 200, else refused (by reason)."""
    if reply.get("statusCode") == 200:
        metrics.emit({"PaymentCreated": 1}, dimensions={"Channel": facts.get("channel", "app")}, properties=_order(facts))
    else:
        metrics.emit({"PaymentRefused": 1}, dimensions={"Reason": facts.get("reason", ERROR)}, properties=_order(facts))


def _order(facts: Mapping[str, str]) -> Dict[str, str]:
    """The order number as a property (searchable in Logs Insights, never a dimension: unbounded)."""
    return {"orderNum": facts["order_num"]} if "order_num" in facts else {}
