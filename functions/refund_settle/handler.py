"""refund_settle — scheduled (EventBridge): every refund still PENDING after the grace time is asked
about (``alipay.trade.fastpay.refund.query``) and settled: REFUNDED, or FAILED with its cents given
back. The event is not read. Emits ``RefundsPending`` and ``RefundOldestPendingAge`` (EMF)."""
import logging

from shared import refund_settle
from shared.config import settings
from shared.alipay.gateway import AlipayGateway
from shared.aws import metrics
from shared.aws.repository import order_repository

log = logging.getLogger(__name__)


def handler(event, context=None):
    cfg = settings().require("app_id", "app_private_key", "alipay_public_key", "order_table", "gateway_url")
    time_left = (lambda: context.get_remaining_time_in_millis() / 1000) if context else (lambda: float("inf"))
    report = refund_settle.run(order_repository(cfg.order_table), AlipayGateway.from_settings(cfg),
                               refund_settle.Policy.from_env(), time_left=time_left)
    metrics.emit({"RefundsPending": report.pending, "RefundOldestPendingAge": (report.oldest_pending_seconds, "Seconds")},
                 properties={"actions": report.actions})
    log.info("refund_settle pass: %s", report.to_dict())
    return report.to_dict()
