"""The packaged template wires order events as README "Order events" says: the table's stream,
a mapping that retries, splits and parks, a publisher allowed its own bus only, and alarms."""
import pytest

from tests.functional.test_package import statements, template  # noqa: F401 - fixtures (packaged: conftest.py)


def resources_of(template, kind):
    return {k: v for k, v in template.items() if v["Type"] == kind}


def test_the_order_table_streams_both_images(template):
    assert template["OrderTable"]["Properties"]["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}


def test_the_mapping_reports_partial_batches_bisects_and_parks_what_still_fails(template):
    (mapping,) = resources_of(template, "AWS::Lambda::EventSourceMapping").values()
    props = mapping["Properties"]
    assert props["EventSourceArn"] == {"Fn::GetAtt": ["OrderTable", "StreamArn"]}
    assert props["FunctionName"]["Fn::GetAtt"][0] == "PublishUnderscoreeventsLambdaFunction"
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["BisectBatchOnFunctionError"] is True and props["MaximumRetryAttempts"] >= 1
    assert props["StartingPosition"] == "TRIM_HORIZON"
    assert props["DestinationConfig"]["OnFailure"]["Destination"] == {"Fn::GetAtt": ["OrderEventsFailedQueue", "Arn"]}
    queue = template["OrderEventsFailedQueue"]["Properties"]
    assert queue["MessageRetentionPeriod"] == 1209600 and queue["SqsManagedSseEnabled"] is True


def test_the_publisher_may_put_events_on_its_own_bus_only(template):
    function = template["PublishUnderscoreeventsLambdaFunction"]["Properties"]
    assert function["Environment"]["Variables"]["EVENT_BUS_NAME"] == {"Ref": "OrderEventBus"}
    granted = statements(template, function["Role"]["Fn::GetAtt"][0])
    by_action = {a: s["Resource"] for s in granted for a in s["Action"]}
    assert by_action["events:PutEvents"] == {"Fn::GetAtt": ["OrderEventBus", "Arn"]}
    assert by_action["sqs:SendMessage"] == {"Fn::GetAtt": ["OrderEventsFailedQueue", "Arn"]}
    stream_actions = sorted(a for a, r in by_action.items() if r == {"Fn::GetAtt": ["OrderTable", "StreamArn"]})
    assert stream_actions == ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams"]
    assert not [a for a in by_action if a.startswith("dynamodb:") and a not in stream_actions and not a.startswith("logs:")]


@pytest.mark.parametrize("alarm", ["AlarmOrderEventsFailed", "AlarmOrderEventsLagging"])
def test_each_order_events_alarm_notifies_the_alarm_topic(template, alarm):
    props = template[alarm]["Properties"]
    assert template[alarm]["Type"] == "AWS::CloudWatch::Alarm" and props["AlarmActions"] == [{"Ref": "AlarmTopic"}]
    if alarm == "AlarmOrderEventsFailed":
        assert props["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["OrderEventsFailedQueue", "QueueName"]}}]
    else:
        assert props["MetricName"] == "IteratorAge" and props["Dimensions"][0]["Value"].endswith("-publish_events")
