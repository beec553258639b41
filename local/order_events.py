"""Order events on the local stack: the deployed pipeline, with moto in AWS's place.

moto's Order table has the stream serverless.yml declares; ``StreamEventSource`` plays Lambda's
event source mapping over it and invokes the real ``publish_events`` handler, which puts the
events on a real (moto) EventBridge bus. A catch-all rule on that bus routes them to an SQS queue,
as a shop's rule would; what arrives there is listed at ``GET /local/events`` and, when
``LOCAL_EVENTS_WEBHOOK`` is set, POSTed there as JSON (one event per request).
"""
from __future__ import annotations

import json
import logging
import threading
import urllib.request
from typing import Any, Callable, Dict, List, Optional

import boto3

from local.event_source import StreamEventSource

log = logging.getLogger(__name__)

QUEUE = "alipay-app-pay-local-order-events"
RULE = "local-all-order-events"
POLL_SECONDS = 0.2
WEBHOOK_TIMEOUT = 2.0


class LocalEventBus:
    """The stage's bus on moto with a rule that sends every order event to one queue."""

    def __init__(self, bus_name: str, source: str, webhook: Optional[str] = None) -> None:
        self.events_client, self.sqs = boto3.client("events"), boto3.client("sqs")
        self.webhook = webhook
        self.received: List[Dict[str, Any]] = []
        self._lock = threading.Lock()
        self.events_client.create_event_bus(Name=bus_name)
        self.queue_url = self.sqs.create_queue(QueueName=QUEUE)["QueueUrl"]
        queue_arn = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.events_client.put_rule(Name=RULE, EventBusName=bus_name, EventPattern=json.dumps({"source": [source]}))
        self.events_client.put_targets(Rule=RULE, EventBusName=bus_name, Targets=[{"Id": "local-queue", "Arn": queue_arn}])

    def drain(self) -> List[Dict[str, Any]]:
        """Move what the rule delivered into ``received`` (and the webhook); the new events."""
        new: List[Dict[str, Any]] = []
        while True:
            reply = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10)
            messages = reply.get("Messages") or []
            if not messages:
                break
            for message in messages:
                new.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        with self._lock:
            self.received.extend(new)
        for event in new:
            log.info("event %s %s %s", event.get("detail-type"), event.get("detail", {}).get("outTradeNo"),
                     event.get("detail", {}).get("eventId"))
            if self.webhook:
                self._post(event)
        return new

    def _post(self, event: Dict[str, Any]) -> None:
        request = urllib.request.Request(
            self.webhook, json.dumps(event, ensure_ascii=False).encode("utf-8"), {"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT) as reply:  # noqa: S310 - the developer's own URL
                reply.read()
        except OSError as exc:  # a webhook that is down must not stop the pipeline
            log.warning("LOCAL_EVENTS_WEBHOOK %s: %s", self.webhook, exc)

    def listed(self, out_trade_no: Optional[str] = None) -> List[Dict[str, Any]]:
        with self._lock:
            events = list(self.received)
        if out_trade_no:
            events = [e for e in events if (e.get("detail") or {}).get("outTradeNo") == out_trade_no]
        return events


class OrderEventsPipeline:
    """Stream -> ``publish_events`` -> bus -> queue, polled on a thread every ``POLL_SECONDS``."""

    def __init__(self, table: str, handler: Callable[[Dict[str, Any]], Any], stream_event: Dict[str, Any],
                 bus: LocalEventBus) -> None:
        stream_arn = boto3.client("dynamodb").describe_table(TableName=table)["Table"]["LatestStreamArn"]
        self.source = StreamEventSource.from_spec(boto3.client("dynamodbstreams"), stream_arn, handler, stream_event)
        self.bus = bus
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="order-events", daemon=True)

    def start(self) -> "OrderEventsPipeline":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def run_once(self) -> int:
        done = self.source.poll()
        self.bus.drain()
        return done

    def _loop(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            try:
                self.run_once()
            except Exception:  # noqa: BLE001 - the next poll tries again, as Lambda's poller does
                log.exception("order events poll failed")
