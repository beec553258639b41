"""POST /pay/notify — Alipay's asynchronous notify. Answers the bare word ``success`` or ``fail``."""
import logging

from shared import api
from shared.alipay.notify import MAX_BODY_BYTES
from shared.payments import take_notify
from shared.aws.repository import order_repository

log = logging.getLogger(__name__)


@api.endpoint("app_id", "alipay_public_key", "alipay_cert", "seller_id", "order_table", error=lambda code, msg: api.text_reply("fail"))
def handler(event, cfg):
    raw = api.raw_body(event, MAX_BODY_BYTES)
    result = take_notify(order_repository(cfg.order_table), cfg, raw)
    level = logging.INFO if result.answer == "success" else logging.WARNING
    outcome = result.transition.outcome.value if result.transition else None
    log.log(level, "notify %s -> %s (%s)", result.notify.out_trade_no if result.notify else "-", result.answer,
            result.reason, extra={"answer": result.answer, "outcome": outcome})
    return api.text_reply(result.answer)
