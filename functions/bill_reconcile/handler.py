"""bill_reconcile — scheduled (EventBridge, daily after Alipay publishes) or invoked directly with
``{"date": "YYYY-MM-DD"}``: match that day's Alipay trade bill (default: yesterday, Asia/Shanghai)
against the Order table and store the report (shared/daily_bill.py). Failures raise, so the
invocation counts as failed and the run can simply be repeated.
"""
import logging

from shared import daily_bill
from shared.config import settings
from shared.alipay.gateway import AlipayGateway
from shared.aws.reports import S3Reports
from shared.aws.repository import order_repository

log = logging.getLogger(__name__)


def handler(event, context=None):
    day = daily_bill.bill_day(event)
    cfg = settings().require("app_id", "app_private_key", "alipay_public_key", "order_table", "gateway_url", "aes_key")
    bucket = daily_bill.report_bucket()
    return daily_bill.run(order_repository(cfg.order_table), AlipayGateway.from_settings(cfg), S3Reports(bucket), day)
