"""POST /pay — the app asks for an orderStr; we create the Order row and sign the request."""
from shared import api, validation
from shared.payments import start_app_pay
from shared.repository import order_repository


@api.endpoint("app_id", "app_private_key", "notify_url", "order_table")
def handler(event, cfg):
    new = validation.pay_request(api.json_body(event))
    order, order_str = start_app_pay(order_repository(cfg.order_table), cfg, new)
    return api.json_reply(200, {"orderStr": order_str, "outTradeNo": order.order_num}, "ok")
