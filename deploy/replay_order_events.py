"""Publish again the order events of batches that publish_events gave up on (README "Order events").

When a batch still fails after the stream mapping's retries, Lambda sends a description of it
(``DDBStreamBatchInfo``: the shard and the first and last sequence numbers) to the stage's
``…-order-events-failed`` queue, and ``AlarmOrderEventsFailed`` fires. Once the cause is fixed,
this reads each description, fetches those records from the table's stream (it keeps 24 hours),
publishes their events exactly as publish_events does, and deletes the message only when every
event was accepted. Running it twice is safe: consumers drop duplicates by ``eventId``. Run it with
an operator's credentials (``sqs:ReceiveMessage``/``DeleteMessage`` on the queue,
``dynamodb:GetShardIterator``/``GetRecords`` on the stream, ``events:PutEvents`` on the bus):

    python -m deploy.replay_order_events --queue-url https://sqs.<region>.amazonaws.com/<account>/alipay-app-pay-prod-order-events-failed \\
        --bus alipay-app-pay-prod-orders [--source alipay-app-pay]
"""
from __future__ import annotations

import argparse
import json
from typing import Any, Dict, List

import boto3

from shared import order_events
from shared.aws.eventbridge import EventBus
from shared.aws.streams import lambda_record


def batch_records(streams, info: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The stream records from ``startSequenceNumber`` to ``endSequenceNumber`` of one shard."""
    first, last = int(info["startSequenceNumber"]), int(info["endSequenceNumber"])
    iterator = streams.get_shard_iterator(
        StreamArn=info["streamArn"], ShardId=info["shardId"], ShardIteratorType="AT_SEQUENCE_NUMBER",
        SequenceNumber=info["startSequenceNumber"],
    )["ShardIterator"]
    found: List[Dict[str, Any]] = []
    while iterator:
        reply = streams.get_records(ShardIterator=iterator, Limit=1000)
        for record in reply["Records"]:
            sequence = int(record["dynamodb"]["SequenceNumber"])
            if sequence > last:
                return found
            if sequence >= first:
                found.append(lambda_record(record, info["streamArn"]))
        if not reply["Records"]:
            return found  # the shard's end so far
        iterator = reply.get("NextShardIterator")
    return found


def replay(sqs, streams, queue_url: str, bus: EventBus, source: str) -> Dict[str, int]:
    """Every message of the queue: republish its batch; delete it when all of it was accepted."""
    counts = {"batches": 0, "events": 0, "kept": 0}
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=300).get("Messages") or []
        if not messages:
            return counts
        for message in messages:
            info = json.loads(message["Body"]).get("DDBStreamBatchInfo")
            if not info:
                counts["kept"] += 1
                continue
            result = order_events.publish(batch_records(streams, info), bus, source)
            counts["events"] += result.published
            if result.failed_sequence:
                counts["kept"] += 1
                continue
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            counts["batches"] += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queue-url", required=True)
    parser.add_argument("--bus", required=True, help="the stage's bus name, e.g. alipay-app-pay-prod-orders")
    parser.add_argument("--source", default="alipay-app-pay")
    args = parser.parse_args()
    counts = replay(boto3.client("sqs"), boto3.client("dynamodbstreams"), args.queue_url, EventBus(args.bus), args.source)
    print(json.dumps(counts))


if __name__ == "__main__":
    main()
