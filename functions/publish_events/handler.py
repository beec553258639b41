"""DynamoDB stream of the Order table -> the stage's EventBridge bus (OrderPaid, OrderClosed,
OrderRefunded). Answers a partial batch response, so Lambda retries from the first record whose
events were not all published."""
from shared import logs, order_events
from shared.aws.eventbridge import EventBus
from shared.config import settings


def handler(event, context):
    logs.clear(function_request_id=getattr(context, "aws_request_id", None))
    cfg = settings().require("event_bus_name", "event_source")
    result = order_events.publish(event.get("Records") or [], EventBus(cfg.event_bus_name), cfg.event_source)
    return result.response()
