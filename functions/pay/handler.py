"""POST /pay — the client asks to pay; we create the Order row and sign the request for its channel."""
from shared import api, validation
from shared.payments import start_pay
from shared.repository import order_repository


@api.endpoint("app_id", "app_private_key", "notify_url", "order_table", "return_url", "gateway_url", "cert_sn")
def handler(event, cfg):
    payload = api.json_body(event)
    new, channel = validation.pay_request(payload), validation.pay_channel(payload)
    order, data = start_pay(order_repository(cfg.order_table), cfg, new, channel)
    return api.json_reply(200, {**data, "outTradeNo": order.order_num}, "ok")
