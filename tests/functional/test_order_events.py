"""Order events on moto: the Order table's real stream (as serverless.yml declares it), Lambda's
event source mapping played by local/event_source.py, the real publish_events handler, a real
(moto) EventBridge bus, and the README's rule routing OrderPaid to an SQS queue."""
from __future__ import annotations

import json
import re
from pathlib import Path

import boto3
import pytest
from botocore.awsrequest import AWSResponse

from functions.pay_notify.handler import handler as pay_notify
from functions.publish_events.handler import handler as publish_events
from local import alipay, faults
from local.event_source import StreamEventSource
from shared import config
from shared.aws import repository
from shared.domain.events import event_id
from shared.domain.orders import REFUND_PENDING, Order, Refund

from tests.conftest import APP_ID, TABLE, notify_event

ROOT = Path(__file__).resolve().parents[2]
BUS, SOURCE = "alipay-app-pay-test-orders", "alipay-app-pay"
ORDER = "ORDER_1796000000000_events"


def readme_rule_pattern() -> dict:
    """The EventPattern of the README's example rule (README "Order events"), as written there."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(r"EventPattern:\s*(\{.*?\})\s*$", text, re.MULTILINE)
    assert found, "README shows no example rule"
    return json.loads(found.group(1))


@pytest.fixture
def bus(dynamodb, monkeypatch):
    """The stage's bus, the README's OrderPaid rule to a queue, and a catch-all rule to another."""
    monkeypatch.setenv("EVENT_BUS_NAME", BUS)
    monkeypatch.setenv("EVENT_SOURCE", SOURCE)
    config.reset()
    events, sqs = boto3.client("events"), boto3.client("sqs")
    events.create_event_bus(Name=BUS)
    queues = {}
    for name, pattern in (("paid", readme_rule_pattern()), ("all", {"source": [SOURCE]})):
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name=name, EventBusName=BUS, EventPattern=json.dumps(pattern))
        events.put_targets(Rule=name, EventBusName=BUS, Targets=[{"Id": name, "Arn": arn}])
        queues[name] = url

    def received(queue: str) -> list:
        out = []
        while True:
            messages = sqs.receive_message(QueueUrl=queues[queue], MaxNumberOfMessages=10).get("Messages") or []
            if not messages:
                return out
            for message in messages:
                out.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=queues[queue], ReceiptHandle=message["ReceiptHandle"])

    return received


@pytest.fixture
def mapping(dynamodb, bus):
    arn = dynamodb.describe_table(TableName=TABLE)["Table"]["LatestStreamArn"]
    spec = {"batchSize": 100, "maximumRetryAttempts": 3, "bisectBatchOnFunctionError": True}
    return StreamEventSource.from_spec(boto3.client("dynamodbstreams"), arn, lambda event: publish_events(event, None), spec)


def deliver(keys, **fields) -> str:
    params = alipay.notify_params(**(dict(app_id=APP_ID, out_trade_no=ORDER, total_amount="198.01", trade_no="T1") | fields))
    return pay_notify(notify_event(alipay.sign_notify(params, keys.private_key)))["body"]


def test_a_payment_is_one_OrderPaid_and_the_readme_rule_routes_it(store, mapping, bus, alipay_keys):
    store.create(Order(ORDER, "PROD_1", "USER_1", "subject", 19801))
    assert deliver(alipay_keys) == "success"
    assert deliver(alipay_keys) == "success"  # a duplicate notify writes nothing, so it yields nothing
    mapping.poll()
    (paid,) = bus("paid")
    assert paid["detail-type"] == "OrderPaid" and paid["source"] == SOURCE
    assert paid["detail"] | {"time": None, "payDate": None} == {
        "eventId": event_id(ORDER, "OrderPaid"), "outTradeNo": ORDER, "userId": "USER_1", "productId": "PROD_1",
        "totalAmount": 19801, "tradeNo": "T1", "status": 1, "time": None, "payDate": None,
    }
    assert [e["detail-type"] for e in bus("all")] == ["OrderPaid"]
    assert mapping.poll() == 0 and bus("all") == []  # nothing new on the stream


def test_close_and_refunds_through_the_real_writes(store, mapping, bus, alipay_keys):
    store.create(Order(ORDER, "PROD_1", "USER_1", "subject", 19801))
    store.create(Order(ORDER + "2", "PROD_1", "USER_1", "subject", 500))
    assert deliver(alipay_keys) == "success"
    assert deliver(alipay_keys, out_trade_no=ORDER + "2", total_amount="5.00", trade_status="TRADE_CLOSED") == "success"
    paid = store.get(ORDER)
    for key, cents in (("R1", 1801), ("R2", 18000)):
        landed, _ = store.add_refund(ORDER, paid.total_cents, key, Refund(cents, REFUND_PENDING, "2026-12-02T10:00:00+08:00"))
        assert landed
        assert store.settle_refund(ORDER, key, cents, "2026-12-02T10:00:05+08:00")[0]
    mapping.poll()
    events = bus("all")
    assert [(e["detail-type"], e["detail"]["outTradeNo"]) for e in events] == [
        ("OrderPaid", ORDER), ("OrderClosed", ORDER + "2"), ("OrderRefunded", ORDER), ("OrderRefunded", ORDER),
    ]
    first, second = events[2]["detail"], events[3]["detail"]
    assert (first["outRequestNo"], first["refundAmount"], first["fullyRefunded"]) == ("R1", 1801, False)
    assert (second["outRequestNo"], second["refundedAmount"], second["fullyRefunded"]) == ("R2", 19801, True)
    assert [e["detail-type"] for e in bus("paid")] == ["OrderPaid"]


def partly_refused(request) -> AWSResponse:
    """EventBridge under load: the call answers 200, publishes every entry but the second, and
    refuses that one. The others really reach the (moto) bus, through a client of its own."""
    entries = json.loads(request.body)["Entries"]
    accepted = [entry for i, entry in enumerate(entries) if i != 1]
    if accepted:
        boto3.client("events").put_events(Entries=accepted)
    results = [{"EventId": f"id-{i}"} if i != 1 else {"ErrorCode": "InternalFailure", "ErrorMessage": "injected"}
               for i in range(len(entries))]
    body = json.dumps({"FailedEntryCount": 1 if len(entries) > 1 else 0, "Entries": results}).encode()
    return AWSResponse(request.url, 200, {"Content-Type": "application/x-amz-json-1.1"}, faults._Raw(body))


@pytest.mark.parametrize("plan", [
    [faults.THROTTLING] * repository.EVENTS.attempts,  # the whole call fails after botocore's retries
    [partly_refused],  # one entry refused inside a successful call
], ids=["call-failed", "entry-refused"])
def test_a_failed_publish_is_retried_and_never_lost(store, mapping, bus, alipay_keys, plan):
    for n in range(3):
        store.create(Order(f"{ORDER}{n}", "PROD_1", "USER_1", "subject", 19801))
    for n in range(3):
        assert deliver(alipay_keys, out_trade_no=f"{ORDER}{n}", trade_no=f"T{n}") == "success"
    injected = faults.Faults(repository.client("events"), "PutEvents", plan)
    mapping.poll()  # the first invocation fails (partly), the mapping retries from the named record
    assert injected.injected == len(plan)
    delivered = [e["detail"]["outTradeNo"] for e in bus("all")]
    assert sorted(set(delivered)) == [f"{ORDER}{n}" for n in range(3)]  # none lost
    assert len(delivered) <= 3 + 1  # at most the refused entry's record again; consumers dedupe on eventId
    assert mapping.failed == []


def test_a_record_that_never_publishes_is_parked_for_the_on_failure_destination(store, mapping, bus, alipay_keys, capsys):
    store.create(Order(ORDER, "PROD_1", "USER_1", "subject", 19801))
    assert deliver(alipay_keys) == "success"
    faults.Faults(repository.client("events"), "PutEvents", [], forever=faults.UNAVAILABLE)
    capsys.readouterr()
    mapping.poll()
    assert [r["dynamodb"]["NewImage"]["orderNum"]["S"] for r in mapping.failed] == [ORDER]
    assert bus("all") == []
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    assert lines and all(line["EventsFailed"] == 1 for line in lines)


def test_an_unreadable_record_is_reported_not_skipped(bus):
    reply = publish_events({"Records": [{"dynamodb": {"SequenceNumber": "7", "NewImage": {"orderNum": {"S": "x"}}}}]}, None)
    assert reply == {"batchItemFailures": [{"itemIdentifier": "7"}]}


def test_a_parked_batch_is_replayed_from_the_stream_by_the_operator_tool(store, dynamodb, bus, alipay_keys):
    """What Lambda sends to the on-failure queue (AWS's DDBStreamBatchInfo record) is enough for
    deploy/replay_order_events.py to publish the batch again, and the message goes once it did."""
    from deploy.replay_order_events import replay
    from shared.aws.eventbridge import EventBus

    for n in range(3):
        store.create(Order(f"{ORDER}{n}", "PROD_1", "USER_1", "subject", 19801))
        assert deliver(alipay_keys, out_trade_no=f"{ORDER}{n}", trade_no=f"T{n}") == "success"
    arn = dynamodb.describe_table(TableName=TABLE)["Table"]["LatestStreamArn"]
    streams, sqs = boto3.client("dynamodbstreams"), boto3.client("sqs")
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    records = streams.get_records(ShardIterator=iterator)["Records"]
    updates = [r for r in records if r["eventName"] == "MODIFY"]  # the three payments
    queue = sqs.create_queue(QueueName="order-events-failed")["QueueUrl"]
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({
        "requestContext": {"condition": "RetryAttemptsExhausted", "approximateInvokeCount": 11},
        "version": "1.0", "DDBStreamBatchInfo": {
            "shardId": shard, "startSequenceNumber": updates[1]["dynamodb"]["SequenceNumber"],
            "endSequenceNumber": updates[2]["dynamodb"]["SequenceNumber"], "batchSize": 2, "streamArn": arn,
        },
    }))
    counts = replay(sqs, streams, queue, EventBus(BUS), SOURCE)
    assert counts == {"batches": 1, "events": 2, "kept": 0}
    assert sorted(e["detail"]["outTradeNo"] for e in bus("all")) == [f"{ORDER}1", f"{ORDER}2"]  # that batch, no more
    assert sqs.receive_message(QueueUrl=queue).get("Messages") is None
