"""add_order — invoked directly (not public); the event is the order itself, amount in cents."""
from shared import api
from shared.domain import validation
from shared.domain.orders import OrderExists
from shared.payments import add_order
from shared.aws.repository import order_repository


@api.endpoint("order_table", error=lambda code, msg: api.envelope(code, None, msg))
def handler(event, cfg):
    new, order_num = validation.add_order_request(event)
    try:
        order = add_order(order_repository(cfg.order_table), new, order_num)
    except OrderExists:
        return api.envelope(409, None, f"order {order_num} already exists")
    return api.envelope(200, order.to_dict(), "ok")
