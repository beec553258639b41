"""POST /pay — the client asks to pay; we create the Order row and sign the request for its channel."""
import logging

from shared import api, config, telemetry
from shared.domain import idempotency, validation
from shared.payments import PaymentNotCreated, PaymentPending, pay
from shared.aws.repository import idempotency_store, order_repository

log = logging.getLogger(__name__)
config.announce_price_source()  # PRICE_SOURCE=client is an opt-in: logged as the container starts


@api.endpoint(
    "app_id", "app_private_key", "notify_url", "order_table", "prices", "idempotency_table",
    "return_url", "gateway_url", "cert_sn", "aes_key", report=telemetry.payment_report,
)
def handler(event, cfg):
    payload = api.json_body(event)
    new = validation.pay_request(payload, caller=api.jwt_sub(event), catalog=cfg.prices)
    channel = validation.pay_channel(payload)
    biz = validation.channel_biz(payload, channel)
    key = idempotency.header_key(lambda name: api.header(event, name))
    keys = idempotency_store(cfg.idempotency_table) if cfg.idempotency_table else None
    try:
        paid = pay(order_repository(cfg.order_table), cfg, new, channel, keys=keys, key=key, biz=biz)
    except PaymentNotCreated as exc:  # precreate/jsapi: Alipay did not make the trade; the row stays unpaid
        log.warning("%s failed: %s", channel, exc)
        refused = f" ({exc.sub_code})" if exc.sub_code else ""
        return api.json_reply(502, None, f"Alipay did not create the payment{refused}, please retry")
    except PaymentPending as exc:  # barcode: no final answer in time; never a guess
        log.warning("barcode %s pending: %s", exc.order_num, exc)
        return api.json_reply(502, {"outTradeNo": exc.order_num, "status": 0},
                              f"payment not settled yet: look again with GET /orders/{exc.order_num}")
    headers = {"Idempotent-Replayed": "true"} if paid.replayed else None
    return api.json_reply(200, {**paid.data, "outTradeNo": paid.order_num}, "ok", headers)
