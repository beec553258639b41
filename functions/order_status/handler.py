"""GET /orders/{outTradeNo} — the order's status as the notify left it, for the app to show."""
from shared import api
from shared.aws.repository import order_repository
from shared.status import order_status

NO_STORE = {"Cache-Control": "no-store"}


@api.endpoint("order_table")
def handler(event, cfg):
    out_trade_no = (event.get("pathParameters") or {}).get("outTradeNo")
    data = order_status(order_repository(cfg.order_table), out_trade_no, api.jwt_sub(event))
    if data is None:
        return api.json_reply(404, None, "order not found", NO_STORE)
    return api.json_reply(200, data, "ok", NO_STORE)
