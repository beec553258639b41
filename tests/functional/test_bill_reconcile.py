"""bill_reconcile on moto (DynamoDB + S3) against the emulator's real bill (local/bills.py, the
zip Alipay's format): matching, every kind of discrepancy, idempotent re-runs, bounds."""
import io
import json
from contextlib import redirect_stdout
from urllib.parse import parse_qsl, urlsplit

import boto3
import pytest

from functions.bill_reconcile.handler import handler as bill_handler
from local import bills
from local.ledger import TRADE_SUCCESS
from shared import daily_bill
from shared.alipay.bill import BillFormatError
from shared.alipay.gateway import GatewayError
from shared.aws import repository
from shared.aws.reports import S3Reports, report_key
from shared.domain import clock
from shared.domain.orders import CLOSED, PAID, PAY_DAY_SHARDS, REFUND_PENDING, UNPAID, Order, Refund, apply_trade_status
from shared.environment import ConfigError

from tests.conftest import TABLE
from tests.emulated_alipay import EmulatedAlipay
from tests.spy import Spy as OpsSpy

BUCKET = "alipay-app-pay-test-bills"
TODAY = clock.now().date().isoformat()


class Spy(OpsSpy):
    """The DynamoDB client, recording the operations used (and able to hold keys back)."""

    def __init__(self, client, unprocessed_first=0, starve=False):
        super().__init__(client)
        self.unprocessed_first, self.starve = unprocessed_first, starve
        self.keys_read = []

    def batch_get_item(self, **kwargs):
        self.ops.append("batch_get_item")
        assert len(kwargs["RequestItems"][TABLE]["Keys"]) <= 100
        self.keys_read += [key["orderNum"]["S"] for key in kwargs["RequestItems"][TABLE]["Keys"]]
        if self.starve:  # throttled for good: every key comes back unprocessed
            return {"Responses": {TABLE: []}, "UnprocessedKeys": kwargs["RequestItems"]}
        if self.unprocessed_first:  # DynamoDB throttled: half the keys come back unprocessed
            self.unprocessed_first -= 1
            keys = kwargs["RequestItems"][TABLE]["Keys"]
            reply = self._client.batch_get_item(RequestItems={TABLE: {**kwargs["RequestItems"][TABLE], "Keys": keys[::2]}})
            reply["UnprocessedKeys"] = {TABLE: {**kwargs["RequestItems"][TABLE], "Keys": keys[1::2]}} if keys[1::2] else {}
            return reply
        return self._client.batch_get_item(**kwargs)


@pytest.fixture
def s3(dynamodb):
    client = boto3.client("s3", region_name="ap-east-1")
    client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "ap-east-1"})
    client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    return client


@pytest.fixture
def fake(app_keys, alipay_keys):
    return EmulatedAlipay(app_keys, alipay_keys)


@pytest.fixture
def spy(dynamodb):
    return Spy(dynamodb)


@pytest.fixture
def store(spy):
    return repository.DynamoOrderRepository(TABLE, spy)


def fetch_from(fake):
    """The download, served by the emulator's own route (tests/e2e fetches it over HTTP)."""
    def fetch(url, timeout, max_bytes):
        parts = urlsplit(url)
        assert parts.path.startswith("/sandbox/bills/")
        status, _, body = bills.route(fake.sandbox, "GET", parts.path[len("/sandbox"):], dict(parse_qsl(parts.query)), None)
        if status != 200:
            raise GatewayError(f"HTTP {status}")
        assert len(body) <= max_bytes
        return body
    return fetch


def run(store, fake, s3, day=TODAY):
    return daily_bill.run(store, fake.gateway(), S3Reports(BUCKET, s3), day, fetch_from(fake))


def report(s3, day=TODAY):
    return json.loads(s3.get_object(Bucket=BUCKET, Key=report_key(day))["Body"].read())


def order(store, order_num, cents=1000, status=UNPAID):
    store.create(Order(order_num, "P1", "U1", "order", cents, status=status))


def paid_both(store, fake, order_num, cents=1000):
    """Paid at Alipay and here (its notify applied)."""
    order(store, order_num, cents)
    trade = fake.add_trade(order_num, f"{cents // 100}.{cents % 100:02d}", TRADE_SUCCESS)
    apply_trade_status(store, order_num, "TRADE_SUCCESS", cents, trade.trade_no, clock.parse_alipay_time(trade.gmt_payment))
    return trade


def kinds(summary):
    return {kind: n for kind, n in summary["counts"].items() if n}


def unindexed(dynamodb, order_num):
    """A paid row from before the pay-day index: the index does not hold it."""
    dynamodb.update_item(TableName=TABLE, Key={"orderNum": {"S": order_num}}, UpdateExpression="REMOVE payDay")


def test_a_day_where_everything_matches_is_matched_on_the_pay_day_index_alone(store, fake, s3, spy):
    for n in range(250):
        paid_both(store, fake, f"ORDER_{n:04d}")
    spy.ops.clear()
    summary = run(store, fake, s3)
    assert summary["bill"]["trades"] == 250 and summary["matched"] == 250 and summary["paidHere"] == 250
    assert summary["discrepancies"] == 0 and report(s3)["items"] == []
    assert spy.ops.count("query") == PAY_DAY_SHARDS and "scan" not in spy.ops  # one page per shard
    assert "batch_get_item" not in spy.ops and "get_item" not in spy.ops and "update_item" not in spy.ops


def test_only_the_lines_the_index_does_not_settle_are_read_by_key(store, fake, s3, spy, dynamodb):
    for n in range(120):
        paid_both(store, fake, f"ORDER_{n:04d}")
    unindexed(dynamodb, "ORDER_0007")  # paid before the index
    order(store, "ORDER_LOST", 1000)
    fake.add_trade("ORDER_LOST", "10.00", TRADE_SUCCESS)  # a lost notify
    assert store.add_refund("ORDER_0042", 1000, "RF42", Refund(300, REFUND_PENDING, clock.iso()))[0]
    fake.sandbox.ledger.update("ORDER_0042", lambda t: bills.refunds_of(t).update(
        {"RF42": {"refund_amount": "3.00", "gmt_refund_pay": clock.alipay_timestamp()}}))
    bills.desk(fake.sandbox).plant(TODAY, bills.Plants(amounts={"ORDER_0099": "10.01"}))  # the index holds 1000 cents
    spy.ops.clear()
    summary = run(store, fake, s3)
    # the refund line reads its order (the payment line of ORDER_0042 is settled by the index)
    assert sorted(spy.keys_read) == ["ORDER_0007", "ORDER_0042", "ORDER_0099", "ORDER_LOST"]
    assert spy.ops.count("batch_get_item") == 1 and "scan" not in spy.ops
    assert kinds(summary) == {"paid_at_alipay": 1, "amount_mismatch": 1, "refund_settled": 1}
    assert summary["matched"] == 119 and summary["payDaySet"] == 1 and summary["paidHere"] == 121  # 120 + the lost one paid
    assert store.get("ORDER_0007").pay_day == TODAY and store.get("ORDER_0042").refunds["RF42"].status == "REFUNDED"


def test_a_lost_notify_is_applied_loudly_and_a_rerun_changes_nothing(store, fake, s3, spy, caplog):
    paid_both(store, fake, "ORDER_OK")
    order(store, "ORDER_LOST", 1999)
    trade = fake.add_trade("ORDER_LOST", "19.99", TRADE_SUCCESS)  # paid, notify never arrived
    first = run(store, fake, s3)
    assert kinds(first) == {"paid_at_alipay": 1}
    [item] = report(s3)["items"]
    assert item["kind"] == "paid_at_alipay" and item["action"] == "applied" and item["outTradeNo"] == "ORDER_LOST"
    stored = store.get("ORDER_LOST")
    assert (stored.status, stored.trade_no, stored.pay_day) == (PAID, trade.trade_no, TODAY)
    assert stored.pay_date == clock.iso(clock.parse_alipay_time(trade.gmt_payment))
    assert any(r.levelname == "ERROR" and "paid_at_alipay ORDER_LOST" in r.getMessage() for r in caplog.records)

    spy.ops.clear()
    again = run(store, fake, s3)
    assert again["discrepancies"] == 0 and again["matched"] == 2
    assert "update_item" not in spy.ops  # nothing more to write
    assert store.get("ORDER_LOST") == stored
    versions = s3.list_object_versions(Bucket=BUCKET, Prefix=report_key(TODAY))["Versions"]
    assert len(versions) == 2  # the first run's report is kept by the bucket's versioning


def test_a_closed_here_order_paid_at_alipay_is_marked_paid(store, fake, s3):
    order(store, "ORDER_CLOSED", 500, status=CLOSED)
    fake.add_trade("ORDER_CLOSED", "5.00", TRADE_SUCCESS)
    assert kinds(run(store, fake, s3)) == {"paid_at_alipay": 1}
    assert store.get("ORDER_CLOSED").status == PAID


def test_an_amount_that_differs_is_reported_and_never_applied(store, fake, s3):
    paid_both(store, fake, "ORDER_A", 1000)
    order(store, "ORDER_B", 1000)
    fake.add_trade("ORDER_B", "10.00", TRADE_SUCCESS)
    bills.desk(fake.sandbox).plant(TODAY, bills.Plants(amounts={"ORDER_A": "10.01", "ORDER_B": "9.99"}))
    summary = run(store, fake, s3)
    assert kinds(summary) == {"amount_mismatch": 2}
    items = {i["outTradeNo"]: i for i in report(s3)["items"]}
    assert (items["ORDER_A"]["billCents"], items["ORDER_A"]["orderCents"]) == (1001, 1000)
    assert store.get("ORDER_B").status == UNPAID  # never paid on a differing amount


def test_lines_for_unknown_orders_and_orders_missing_from_the_bill(store, fake, s3):
    paid_both(store, fake, "ORDER_BILLED")
    paid_both(store, fake, "ORDER_NOT_BILLED", 2500)
    bills.desk(fake.sandbox).plant(TODAY, bills.Plants(
        omit={"ORDER_NOT_BILLED"}, extra=[{"out_trade_no": "ORDER_STRANGER", "total_amount": "3.00"}],
    ))
    summary = run(store, fake, s3)
    assert kinds(summary) == {"unknown_order": 1, "missing_from_bill": 1}
    items = {i["kind"]: i for i in report(s3)["items"]}
    assert items["unknown_order"]["outTradeNo"] == "ORDER_STRANGER" and items["unknown_order"]["billCents"] == 300
    assert items["missing_from_bill"]["outTradeNo"] == "ORDER_NOT_BILLED" and items["missing_from_bill"]["orderCents"] == 2500
    assert store.get("ORDER_STRANGER") is None  # nothing is created from a bill line


def test_refunds_pending_here_are_settled_and_unrecorded_or_different_ones_reported(store, fake, s3, dynamodb):
    for name in ("ORDER_R1", "ORDER_R2", "ORDER_R3", "ORDER_R4"):
        paid_both(store, fake, name, 1000)
    now = clock.iso()
    for name, request_no, cents in (("ORDER_R1", "RF1", 300), ("ORDER_R3", "RF3", 200), ("ORDER_R4", "RF4", 100)):
        assert store.add_refund(name, 1000, request_no, Refund(cents, REFUND_PENDING, now))[0]
    store.settle_refund("ORDER_R4", "RF4", 100, now)
    for name, request_no, amount in (("ORDER_R1", "RF1", "3.00"), ("ORDER_R2", "RF2", "1.00"), ("ORDER_R3", "RF3", "2.50"),
                                     ("ORDER_R4", "RF4", "1.00")):
        fake.sandbox.ledger.update(name, lambda t, r=request_no, a=amount: bills.refunds_of(t).update(
            {r: {"refund_amount": a, "gmt_refund_pay": clock.alipay_timestamp()}}))
    summary = run(store, fake, s3)
    assert summary["bill"]["refunds"] == 4 and summary["bill"]["refundCents"] == 750
    assert kinds(summary) == {"refund_settled": 1, "refund_not_recorded": 1, "refund_amount_mismatch": 1}
    assert store.get("ORDER_R1").refunds["RF1"].status == "REFUNDED"
    assert store.get("ORDER_R3").refunds["RF3"].status == REFUND_PENDING  # 2.50 at Alipay, 2.00 here: not settled
    made_at_alipay = store.get("ORDER_R2")  # recorded through the refunds module's rule, once
    assert (made_at_alipay.refunds["RF2"].cents, made_at_alipay.refunds["RF2"].status, made_at_alipay.refunded_cents) == (100, "REFUNDED", 100)
    again = run(store, fake, s3)
    assert kinds(again) == {"refund_amount_mismatch": 1}
    assert store.get("ORDER_R2").refunded_cents == 100


def test_paid_rows_from_before_the_index_get_their_pay_day_from_the_bill(store, fake, s3, dynamodb):
    trade = paid_both(store, fake, "ORDER_OLD")
    unindexed(dynamodb, "ORDER_OLD")
    summary = run(store, fake, s3)
    assert summary["discrepancies"] == 0 and summary["payDaySet"] == 1
    assert store.get("ORDER_OLD").pay_day == TODAY and store.paid_on(TODAY) == [("ORDER_OLD", 1000, trade.trade_no)]


def test_no_bill_at_alipay_means_every_order_paid_here_that_day_is_missing(store, fake, s3, alipay_keys):
    paid_both(store, fake, "ORDER_ONLY_HERE")
    fake.answer_next = {"code": "40004", "msg": "Business Failed", "sub_code": "isp.bill_not_exist", "sub_msg": "账单不存在"}
    summary = run(store, fake, s3)
    assert summary["bill"]["found"] is False and kinds(summary) == {"missing_from_bill": 1}


@pytest.mark.parametrize("damage", bills.DAMAGES)
def test_a_damaged_bill_is_refused_with_nothing_written(store, fake, s3, spy, damage):
    order(store, "ORDER_LOST", 1000)
    fake.add_trade("ORDER_LOST", "10.00", TRADE_SUCCESS)
    bills.desk(fake.sandbox).plant(TODAY, bills.Plants(damage=damage))
    spy.ops.clear()
    with pytest.raises(BillFormatError):
        run(store, fake, s3)
    assert spy.ops == [] and store.get("ORDER_LOST").status == UNPAID
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0


def test_unprocessed_keys_are_asked_again(dynamodb, fake, s3):
    spy = Spy(dynamodb, unprocessed_first=2)
    store = repository.DynamoOrderRepository(TABLE, spy)
    for n in range(150):
        paid_both(store, fake, f"ORDER_{n:04d}")
        unindexed(dynamodb, f"ORDER_{n:04d}")  # so each is read by key
    summary = run(store, fake, s3)
    assert summary["matched"] == 150 and summary["discrepancies"] == 0 and summary["payDaySet"] == 150
    assert spy.ops.count("batch_get_item") == 4  # 2 chunks, each held back once


def test_unprocessed_keys_that_never_come_are_an_error_not_a_discrepancy(dynamodb, fake, s3, monkeypatch):
    monkeypatch.setattr(repository.time, "sleep", lambda seconds: None)
    spy = Spy(dynamodb, starve=True)
    store = repository.DynamoOrderRepository(TABLE, spy)
    paid_both(store, fake, "ORDER_1")
    unindexed(dynamodb, "ORDER_1")
    with pytest.raises(repository.UnprocessedKeys):
        run(store, fake, s3)
    assert spy.ops.count("batch_get_item") == repository.BATCH_GET_ROUNDS
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0


def test_metrics_one_line_per_kind_with_the_total_under_service(store, fake, s3):
    order(store, "ORDER_LOST", 1000)
    fake.add_trade("ORDER_LOST", "10.00", TRADE_SUCCESS)
    out = io.StringIO()
    with redirect_stdout(out):
        run(store, fake, s3)
    lines = [json.loads(line) for line in out.getvalue().splitlines() if '"BillDiscrepancies"' in line]
    assert {line["Kind"]: line["BillDiscrepancies"] for line in lines} == {kind: int(kind == "paid_at_alipay") for kind in daily_bill.KINDS}
    assert all(line["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0] == ["Service"] for line in lines)


def test_the_day_an_event_asks_for(monkeypatch):
    today = clock.now().date()
    assert daily_bill.bill_day({}) == daily_bill.previous_day(today)
    assert daily_bill.bill_day({"version": "0", "detail-type": "Scheduled Event", "detail": {}}) == daily_bill.previous_day(today)
    assert daily_bill.bill_day({"date": "2026-02-28"}, today=clock.now().date().replace(year=2027)) == "2026-02-28"
    for bad in ("2026-02-30", "20260228", 20260228, "tomorrow", (today.replace(year=today.year + 1)).isoformat()):
        with pytest.raises(ValueError):
            daily_bill.bill_day({"date": bad})


def test_the_handler_refuses_a_bad_date_and_a_missing_bucket_before_any_call(env, monkeypatch):
    with pytest.raises(ValueError):
        bill_handler({"date": "2026-13-01"})
    monkeypatch.delenv("BILL_REPORT_BUCKET", raising=False)
    with pytest.raises(ConfigError, match="BILL_REPORT_BUCKET"):
        bill_handler({"date": TODAY})


def test_the_one_off_backfill_files_old_paid_rows_under_their_pay_day(store, fake, dynamodb):
    from deploy.backfill_pay_day import backfill

    paid_both(store, fake, "ORDER_OLD_1")
    paid_both(store, fake, "ORDER_OLD_2")
    order(store, "ORDER_UNPAID")
    for name in ("ORDER_OLD_1", "ORDER_OLD_2"):
        unindexed(dynamodb, name)
    assert store.paid_on(TODAY) == []
    assert backfill(dynamodb, TABLE, dry_run=True) == {"filed": 2, "changed": 0} and store.paid_on(TODAY) == []
    assert backfill(dynamodb, TABLE) == {"filed": 2, "changed": 0}
    assert sorted(row[0] for row in store.paid_on(TODAY)) == ["ORDER_OLD_1", "ORDER_OLD_2"]
    assert backfill(dynamodb, TABLE) == {"filed": 0, "changed": 0}  # safe to repeat
