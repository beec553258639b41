"""reconcile — scheduled (EventBridge) or invoked directly: converge the orders due for a look to
Alipay's truth. The event is not read: each pass takes the orders whose ``reconcileAt`` has come.
Failures raise, so the invocation counts as failed in CloudWatch and the next schedule retries.
"""
import logging

from shared import reconcile
from shared.config import settings
from shared.alipay.gateway import AlipayGateway
from shared.aws.repository import order_repository

log = logging.getLogger(__name__)


def handler(event, context=None):
    cfg = settings().require("app_id", "app_private_key", "alipay_public_key", "order_table", "gateway_url", "aes_key")
    policy = reconcile.Policy.from_env()
    time_left = (lambda: context.get_remaining_time_in_millis() / 1000) if context else (lambda: float("inf"))
    report = reconcile.run(order_repository(cfg.order_table), AlipayGateway.from_settings(cfg), policy, time_left=time_left)
    log.info("reconcile pass: %s", report.to_dict())
    return report.to_dict()
