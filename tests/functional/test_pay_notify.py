"""functions/pay_notify on moto: the state table of ../shared/design.md, row by row."""
import pytest

from functions.pay_notify.handler import handler as pay_notify
from local import alipay
from shared.domain.orders import CLOSED, PAID, UNPAID, Order

from tests.conftest import APP_ID, notify_event

ORDER = "ORDER_1795000000000_abc"


@pytest.fixture
def order(store):
    store.create(Order(ORDER, "P1", "U1", "subject", 19801))
    return store


def deliver(keys, **fields):
    params = alipay.notify_params(**(dict(app_id=APP_ID, out_trade_no=ORDER, total_amount="198.01") | fields))
    reply = pay_notify(notify_event(alipay.sign_notify(params, keys.private_key)))
    assert reply["statusCode"] == 200 and reply["headers"]["Content-Type"].startswith("text/plain")
    return reply["body"]


@pytest.mark.parametrize("status", ["TRADE_SUCCESS", "TRADE_FINISHED"])
def test_paid_notify_marks_paid_with_trade_no_and_pay_date(order, alipay_keys, status):
    assert deliver(alipay_keys, trade_status=status, trade_no="T1", gmt_payment="2026-11-26 21:46:15") == "success"
    paid = order.get(ORDER)
    assert (paid.status, paid.trade_no, paid.pay_date) == (PAID, "T1", "2026-11-26T21:46:15+08:00")


def test_duplicate_paid_notify_is_a_no_op_that_answers_success(order, alipay_keys):
    assert deliver(alipay_keys, trade_no="T1", gmt_payment="2026-11-26 21:46:15") == "success"
    assert deliver(alipay_keys, trade_no="T1", gmt_payment="2026-11-26 22:00:00") == "success"
    assert order.get(ORDER).pay_date == "2026-11-26T21:46:15+08:00"  # the first write stands


def test_closed_never_downgrades_a_paid_order(order, alipay_keys):
    deliver(alipay_keys)
    assert deliver(alipay_keys, trade_status="TRADE_CLOSED") == "success"
    assert order.get(ORDER).status == PAID


def test_closed_closes_an_unpaid_order_and_a_late_payment_still_wins(order, alipay_keys, caplog):
    assert deliver(alipay_keys, trade_status="TRADE_CLOSED") == "success"
    assert order.get(ORDER).status == CLOSED
    assert deliver(alipay_keys, trade_status="TRADE_CLOSED") == "success"  # duplicate
    assert deliver(alipay_keys, trade_status="TRADE_SUCCESS", trade_no="T9") == "success"
    assert order.get(ORDER).status == PAID and "was closed but Alipay reports it paid" in caplog.text


def test_wait_buyer_pay_changes_nothing(order, alipay_keys):
    assert deliver(alipay_keys, trade_status="WAIT_BUYER_PAY") == "success"
    assert order.get(ORDER).status == UNPAID


def test_amounts_compare_by_value(order, alipay_keys):
    assert deliver(alipay_keys, total_amount="198.010") == "success"
    assert order.get(ORDER).status == PAID


@pytest.mark.parametrize("trade_status", ["TRADE_SUCCESS", "TRADE_CLOSED", "WAIT_BUYER_PAY"])
def test_amount_mismatch_is_refused(order, alipay_keys, trade_status):
    assert deliver(alipay_keys, total_amount="0.01", trade_status=trade_status) == "fail"
    assert order.get(ORDER).status == UNPAID


def test_unknown_order_fails_and_creates_nothing(order, alipay_keys, dynamodb):
    assert deliver(alipay_keys, out_trade_no="ORDER_404") == "fail"
    assert order.get("ORDER_404") is None
    assert len(dynamodb.scan(TableName=order.table_name)["Items"]) == 1


def test_unknown_trade_status_is_not_acknowledged(order, alipay_keys):
    assert deliver(alipay_keys, trade_status="TRADE_PENDING") == "fail"
    assert order.get(ORDER).status == UNPAID


@pytest.mark.parametrize(
    "fields",
    [dict(app_id="2021999999999999"), dict(seller_id="2088999999999999")],
    ids=["app_id", "seller_id"],
)
def test_notifies_for_someone_else_are_refused(order, alipay_keys, fields):
    assert deliver(alipay_keys, **fields) == "fail"
    assert order.get(ORDER).status == UNPAID


def test_forged_signature_is_refused(order, app_keys):
    assert deliver(app_keys) == "fail"
    assert order.get(ORDER).status == UNPAID


def test_gbk_notify_end_to_end(order, alipay_keys):
    assert deliver(alipay_keys, charset="gbk", subject="数据恢复产品 A") == "success"
    assert order.get(ORDER).status == PAID


def test_plain_text_body_from_api_gateway_is_read_too(order, alipay_keys):
    params = alipay.sign_notify(alipay.notify_params(app_id=APP_ID, out_trade_no=ORDER, total_amount="198.01"), alipay_keys.private_key)
    event = notify_event(params)
    event["body"], event["isBase64Encoded"] = alipay.form_body(params).decode(), False
    assert pay_notify(event)["body"] == "success"


def test_our_failure_answers_fail_and_the_retry_succeeds(order, alipay_keys, monkeypatch):
    from botocore.exceptions import ClientError

    from shared.aws import repository

    client = repository.dynamodb_client()
    real = client.update_item
    calls = []

    def flaky(**kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise ClientError({"Error": {"Code": "InternalServerError", "Message": "boom"}}, "UpdateItem")
        return real(**kwargs)

    monkeypatch.setattr(client, "update_item", flaky)
    assert deliver(alipay_keys) == "fail"
    assert order.get(ORDER).status == UNPAID
    assert deliver(alipay_keys) == "success"
    assert order.get(ORDER).status == PAID


def test_missing_public_key_answers_fail(order, alipay_keys, monkeypatch, caplog):
    monkeypatch.delenv("ALIPAY_PUBLIC_KEY")
    assert deliver(alipay_keys) == "fail"
    assert "ALIPAY_PUBLIC_KEY" in caplog.text


def test_bad_base64_body_answers_fail(order):
    event = notify_event({"a": "b"})
    event["body"], event["isBase64Encoded"] = "***", True
    assert pay_notify(event)["body"] == "fail"
