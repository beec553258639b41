"""GET /pay/return — Alipay sends the buyer's browser back here after page/wap pay.

Shows the order as stored; never changes it (only the notify and the query are authoritative).
"""
import logging

from shared import api, return_page
from shared.alipay.notify import MAX_BODY_BYTES, NotifyRejected
from shared.payments import take_return
from shared.aws.repository import order_repository

log = logging.getLogger(__name__)


@api.endpoint(
    "app_id", "alipay_public_key", "alipay_cert", "order_table",
    error=lambda code, msg: api.html_reply(return_page.render_unavailable(), code),
)
def handler(event, cfg):
    query = api.raw_query(event, MAX_BODY_BYTES)
    try:
        order = take_return(order_repository(cfg.order_table), cfg, query)
    except NotifyRejected as exc:
        log.warning("return rejected: %s", exc.reason)
        return api.html_reply(return_page.render_rejected(), 400)
    return api.html_reply(return_page.render_page(order), 200 if order else 404)
