"""POST /pay — the client asks to pay; we create the Order row and sign the request for its channel."""
import logging

from shared import api, config, telemetry
from shared.domain import idempotency, validation
from shared.payments import PaymentNotCreated, pay
from shared.aws.repository import idempotency_store, order_repository

log = logging.getLogger(__name__)
config.announce_price_source()  # PRICE_SOURCE=client is an opt-in: logged as the container starts


@api.endpoint(
    "app_id", "app_private_key", "notify_url", "order_table", "prices", "idempotency_table",
    "return_url", "gateway_url", "cert_sn", report=telemetry.payment_report,
)
def handler(event, cfg):
    payload = api.json_body(event)
    new = validation.pay_request(payload, caller=api.jwt_sub(event), catalog=cfg.prices)
    channel = validation.pay_channel(payload)
    key = idempotency.header_key(lambda name: api.header(event, name))
    keys = idempotency_store(cfg.idempotency_table) if cfg.idempotency_table else None
    try:
        paid = pay(order_repository(cfg.order_table), cfg, new, channel, keys=keys, key=key)
    except PaymentNotCreated as exc:  # precreate: Alipay did not make the QR code; the row stays unpaid
        log.warning("precreate failed: %s", exc)
        refused = f" ({exc.sub_code})" if exc.sub_code else ""
        return api.json_reply(502, None, f"Alipay did not create the payment{refused}, please retry")
    headers = {"Idempotent-Replayed": "true"} if paid.replayed else None
    return api.json_reply(200, {**paid.data, "outTradeNo": paid.order_num}, "ok", headers)
