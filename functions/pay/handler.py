"""POST /pay — the app asks for an orderStr; we create the Order row and sign the request."""
from shared import api, idempotency, validation
from shared.payments import app_pay
from shared.repository import idempotency_store, order_repository


@api.endpoint("app_id", "app_private_key", "notify_url", "order_table", "catalog", "idempotency_table")
def handler(event, cfg):
    new = validation.pay_request(api.json_body(event), caller=api.jwt_sub(event), catalog=cfg.catalog)
    key = idempotency.header_key(lambda name: api.header(event, name))
    keys = idempotency_store(cfg.idempotency_table) if cfg.idempotency_table else None
    paid = app_pay(order_repository(cfg.order_table), cfg, new, keys=keys, key=key)
    headers = {"Idempotent-Replayed": "true"} if paid.replayed else None
    return api.json_reply(200, {"orderStr": paid.order_str, "outTradeNo": paid.order_num}, "ok", headers)
