"""POST /pay — the client asks to pay; we create the Order row and sign the request for its channel."""
import logging

from shared import api, validation
from shared.gateway import AlipayError, GatewayError
from shared.payments import start_pay
from shared.repository import order_repository

log = logging.getLogger(__name__)


@api.endpoint("app_id", "app_private_key", "notify_url", "order_table", "return_url", "gateway_url", "cert_sn")
def handler(event, cfg):
    payload = api.json_body(event)
    new, channel = validation.pay_request(payload), validation.pay_channel(payload)
    try:
        order, data = start_pay(order_repository(cfg.order_table), cfg, new, channel)
    except GatewayError as exc:  # precreate: Alipay did not make the QR code; the row stays unpaid
        log.warning("precreate failed: %s", exc)
        refused = f" ({exc.sub_code})" if isinstance(exc, AlipayError) and exc.sub_code else ""
        return api.json_reply(502, None, f"Alipay did not create the payment{refused}, please retry")
    return api.json_reply(200, {**data, "outTradeNo": order.order_num}, "ok")
