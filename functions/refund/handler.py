"""refund — invoked directly by an operator or a service (not public); amounts in cents.

Event: ``{outTradeNo, outRequestNo, refundAmount?, refundReason?}``; without refundAmount, what
is left of the order is refunded. Calling again with the same outRequestNo is always safe.
"""
from shared import api, refunds
from shared.domain import validation
from shared.alipay.gateway import AlipayGateway
from shared.aws.repository import order_repository


@api.endpoint(
    "app_id", "app_private_key", "alipay_public_key", "order_table", "gateway_url", "aes_key",
    error=lambda code, msg: api.envelope(code, None, msg),
)
def handler(event, cfg):
    request = validation.refund_request(event)
    result = refunds.refund(order_repository(cfg.order_table), AlipayGateway.from_settings(cfg), request)
    return api.envelope(result.code, result.data(), result.msg)
