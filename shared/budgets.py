"""Each handler's worst case, whole: the AWS calls' budgets (shared/aws/repository.py) plus
Alipay's gateway (shared/alipay/gateway.py), summed without sleeping and checked against the
deadlines the platform and Alipay set (tests/unit/test_budget.py, tests/functional/test_budgets.py).
"""
from __future__ import annotations

from typing import Optional

from .aws.repository import DYNAMODB, SECRETS

NOTIFY_DEADLINE = 5.0  # Alipay must read our answer within this, or it counts the delivery failed
NOTIFY_COMPUTE_ALLOWANCE = 0.5  # parse + RSA2 verify + logging, measured in milliseconds; generous
HTTP_API_TIMEOUT = 30.0  # API Gateway HTTP API's integration timeout (its maximum): pay must answer first


def _gateway_timeout() -> float:
    """One gateway call, whole (http_post ends by it); imported late to keep http/ssl off pay's path."""
    from .alipay.gateway import DEFAULT_TIMEOUT  # noqa: PLC0415

    return DEFAULT_TIMEOUT


def notify_worst_case_seconds() -> float:
    """pay_notify's worst case: a cold key read, one conditional write, and the CPU work."""
    return SECRETS.worst_case_seconds() + DYNAMODB.worst_case_seconds() + NOTIFY_COMPUTE_ALLOWANCE


def pay_worst_case_seconds() -> float:
    """pay's worst case, on its longest path (channel=precreate with an Idempotency-Key, keys cold):
    two key reads (the app's private key; Alipay's public key, to verify the gateway's answer),
    three DynamoDB calls (key claim, Order put, key completion or release), one gateway call."""
    return (2 * SECRETS.worst_case_seconds() + 3 * DYNAMODB.worst_case_seconds() + _gateway_timeout()
            + NOTIFY_COMPUTE_ALLOWANCE)


def reconcile_order_worst_case_seconds(gateway_timeout: Optional[float] = None) -> float:
    """What a reconcile pass must have left to take one more order: ``alipay.trade.query`` and
    ``alipay.trade.close``, and two conditional writes (a refused transition, then the reschedule)."""
    return 2 * (_gateway_timeout() if gateway_timeout is None else gateway_timeout) + 2 * DYNAMODB.worst_case_seconds() + NOTIFY_COMPUTE_ALLOWANCE


def refund_settle_order_worst_case_seconds(gateway_timeout: Optional[float] = None) -> float:
    """What a refund_settle pass must have left to take one more order with one due refund:
    ``alipay.trade.fastpay.refund.query`` and the refund's retry, and four DynamoDB calls (read
    the order, settle or fail the refund, read it again, recheck or leave the index)."""
    return 2 * (_gateway_timeout() if gateway_timeout is None else gateway_timeout) + 4 * DYNAMODB.worst_case_seconds() + NOTIFY_COMPUTE_ALLOWANCE
