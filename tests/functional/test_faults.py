"""DynamoDB throttling, 5xx and timeouts injected into the handlers' own client (its retry
configuration included): pay leaves no orderStr without a row, pay_notify answers ``fail`` so
Alipay delivers again, and the next delivery succeeds."""
from __future__ import annotations

import json

import pytest

from functions.pay.handler import handler as pay
from functions.pay_notify.handler import handler as pay_notify
from local import alipay
from shared import refunds
from shared.aws import repository
from shared.domain.orders import PAID, UNPAID, Order
from shared.domain.validation import RefundRequest

from tests import faults
from tests.faults import sleeps  # noqa: F401 - fixture
from tests.conftest import APP_ID, TABLE, notify_event, pay_event, stored_items
from tests.emulated_alipay import EmulatedAlipay

PURCHASE = {"productId": "P1", "userId": "U1", "orderName": "数据恢复产品 A", "total_amount": "198.01"}
ALL_FAULTS = [faults.THROTTLED, faults.THROTTLING, faults.INTERNAL_ERROR, faults.UNAVAILABLE,
              faults.READ_TIMEOUT, faults.CONNECT_TIMEOUT]
FAULT_IDS = ["throttled", "throttling", "500", "503", "read-timeout", "connect-timeout"]




@pytest.fixture
def client(dynamodb):
    """The very client the handlers use (created under moto, configured by repository.py)."""
    return repository.dynamodb_client()


def body(reply) -> dict:
    return json.loads(reply["body"])


@pytest.mark.parametrize("fault", ALL_FAULTS, ids=FAULT_IDS)
def test_pay_answers_500_without_order_str_or_row_when_dynamodb_keeps_failing(client, sleeps, fault):
    injected = faults.Faults(client, "PutItem", [], forever=fault)
    reply = pay(pay_event(PURCHASE))
    assert reply["statusCode"] == 500
    assert body(reply)["data"] is None and "orderStr" not in reply["body"]
    assert stored_items(client) == []
    # Retried as configured, each backoff within its bound, then given up.
    assert injected.sent == repository.DYNAMODB.attempts
    assert len(sleeps.delays) == repository.DYNAMODB.attempts - 1
    assert all(0 <= d <= repository.DYNAMODB.backoff_bound(n + 1) for n, d in enumerate(sleeps.delays))


@pytest.mark.parametrize("fault", ALL_FAULTS, ids=FAULT_IDS)
def test_one_transient_fault_is_retried_and_the_order_is_created_once(client, sleeps, fault):
    injected = faults.Faults(client, "PutItem", [fault])
    reply = pay(pay_event(PURCHASE))
    assert reply["statusCode"] == 200, reply
    assert injected.sent == 2 and len(sleeps.delays) == 1
    items = stored_items(client)
    assert [i["orderNum"]["S"] for i in items] == [body(reply)["data"]["outTradeNo"]]


def test_a_put_that_landed_but_timed_out_is_not_doubled(client, dynamodb, sleeps):
    """The worst timeout: DynamoDB wrote the row, the answer was lost, botocore retries the put.
    The retry's condition fails on our own row; it must count as created, not draw a new order."""
    def land_then_time_out(request):
        item = json.loads(request.body)["Item"]
        dynamodb.put_item(TableName=json.loads(request.body)["TableName"], Item=item)
        return faults.READ_TIMEOUT(request)

    faults.Faults(client, "PutItem", [land_then_time_out])
    reply = pay(pay_event(PURCHASE))
    assert reply["statusCode"] == 200, reply
    items = stored_items(client)
    assert len(items) == 1 and items[0]["orderNum"]["S"] == body(reply)["data"]["outTradeNo"]


def unpaid_order(store, order_num="ORDER_1_fault"):
    store.create(Order(order_num=order_num, product_id="P1", user_id="U1", order_name="o", total_cents=19801))
    return order_num


def notify_for(keys, order_num):
    params = alipay.notify_params(app_id=APP_ID, out_trade_no=order_num, total_amount="198.01")
    return notify_event(alipay.sign_notify(params, keys.private_key))


@pytest.mark.parametrize("fault", ALL_FAULTS, ids=FAULT_IDS)
def test_notify_answers_fail_under_faults_and_the_next_delivery_succeeds(client, store, alipay_keys, sleeps, fault):
    order_num = unpaid_order(store)
    event = notify_for(alipay_keys, order_num)
    injected = faults.Faults(client, "UpdateItem", [fault] * repository.DYNAMODB.attempts)

    assert pay_notify(event)["body"] == "fail"
    assert injected.sent == repository.DYNAMODB.attempts
    assert store.get(order_num).status == UNPAID  # not lost, not half-applied

    assert pay_notify(event)["body"] == "success"  # Alipay's next delivery
    assert store.get(order_num).status == PAID


def test_notify_applied_whose_answer_timed_out_still_answers_success(client, dynamodb, store, alipay_keys, sleeps):
    """UpdateItem applied, answer lost, botocore retries: the condition fails on our own write,
    judged ALREADY -> success, exactly one transition."""
    order_num = unpaid_order(store)

    def apply_then_time_out(request):
        sent = json.loads(request.body)
        sent.pop("ReturnValuesOnConditionCheckFailure", None)
        dynamodb.update_item(**sent)
        return faults.READ_TIMEOUT(request)

    faults.Faults(client, "UpdateItem", [apply_then_time_out])
    assert pay_notify(notify_for(alipay_keys, order_num))["body"] == "success"
    assert store.get(order_num).status == PAID


def test_no_order_is_lost_across_a_burst_of_faults(client, store, sleeps):
    """Every pay either answers 200 with a stored order or 500 with nothing: never a 200 whose
    order is missing, never a row nobody was told about."""
    plan = [faults.THROTTLED, None, faults.READ_TIMEOUT, faults.READ_TIMEOUT, None, faults.INTERNAL_ERROR,
            faults.INTERNAL_ERROR, faults.UNAVAILABLE, None, None]
    faults.Faults(client, "PutItem", plan)
    issued = []
    for _ in range(6):
        reply = pay(pay_event(PURCHASE))
        assert reply["statusCode"] in (200, 500)
        if reply["statusCode"] == 200:
            issued.append(body(reply)["data"]["outTradeNo"])
    stored = sorted(i["orderNum"]["S"] for i in stored_items(client))
    assert stored == sorted(issued) and len(issued) >= 3


REFUSED = {"code": "40004", "msg": "Business Failed", "sub_code": "ACQ.SELLER_BALANCE_NOT_ENOUGH", "sub_msg": "卖家余额不足"}


@pytest.mark.parametrize("earlier_refund", [False, True], ids=["first-refund", "another-refund-before"])
def test_a_refund_reservation_that_landed_but_timed_out_is_released_on_refusal(
    client, dynamodb, app_keys, alipay_keys, sleeps, earlier_refund
):
    """The reserving UpdateItem is applied, its answer lost, botocore retries: the retry's condition
    fails on our own record. It must still count as this call's reservation, so Alipay's definite
    refusal gives the cents back instead of stranding them as someone else's PENDING refund."""
    store = repository.DynamoOrderRepository(TABLE, client)  # the handlers' client, faults and all
    store.create(Order("ORDER_R", "P1", "U1", "o", 19801, status=PAID, trade_no="2026112622001400000000000001"))
    fake = EmulatedAlipay(app_keys, alipay_keys)
    fake.add_trade("ORDER_R", "198.01", "TRADE_SUCCESS")
    if earlier_refund:
        assert refunds.refund(store, fake.gateway(), RefundRequest("ORDER_R", "R0", 801)).code == 200

    landed, sent = [], []

    def land_then_time_out(request, **_):
        """The first UpdateItem that applies is applied here and its answer lost; any other goes through."""
        sent.append(1)
        if landed:
            return None
        update = json.loads(request.body)
        update.pop("ReturnValuesOnConditionCheckFailure", None)
        try:
            dynamodb.update_item(**update)
        except dynamodb.exceptions.ConditionalCheckFailedException:
            return None  # does not land: DynamoDB (moto) answers it as it is
        landed.append(update)
        return faults.READ_TIMEOUT(request)

    client.meta.events.register_first("before-send.dynamodb.UpdateItem", land_then_time_out)
    fake.answer_next = REFUSED
    result = refunds.refund(store, fake.gateway(), RefundRequest("ORDER_R", "R1", 5000))
    assert landed and "R1" in json.dumps(landed[0]) and len(sent) >= 2  # the reservation landed, then was retried
    assert result.code == 422, result.msg
    order = store.get("ORDER_R")
    assert set(order.refunds) == ({"R0"} if earlier_refund else set())
    assert order.refunded_cents == (801 if earlier_refund else 0)
    again = refunds.refund(store, fake.gateway(), RefundRequest("ORDER_R", "R1", 5000))  # the cents are free again
    assert again.code == 200 and "attempt" not in again.data()  # the token stays in the ledger
