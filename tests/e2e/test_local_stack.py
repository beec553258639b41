"""The local stack end to end, over real HTTP: app -> /pay -> emulated Alipay -> notify -> status."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from local import keys
from shared.domain import clock
from shared.alipay import orderstr, signing
from shared.aws import repository

from tests.e2e.conftest import http, wait_until

PURCHASE = {"productId": "PROD_1", "userId": "USER_1", "orderName": "数据恢复产品 A", "total_amount": "198.01"}


FORM = "application/x-www-form-urlencoded; charset=utf-8"


def query_body(app, out_trade_no: str) -> bytes:
    """An alipay.trade.query request signed with the local app key."""
    params = orderstr.common_params("alipay.trade.query", "2021000000000001", clock.alipay_timestamp())
    params["biz_content"] = orderstr.biz_content_json({"out_trade_no": out_trade_no})
    return orderstr.encode(orderstr.signed_params(app.private_key, params)).encode()


def pay(stack) -> tuple:
    status, reply = http("POST", f"{stack.url}/pay", json.dumps(PURCHASE).encode(), "application/json")
    assert status == 200, reply
    return reply["data"]["orderStr"], reply["data"]["outTradeNo"]


def app_pay(stack, order_str: str, query: str = "") -> dict:
    status, result = http("POST", f"{stack.url}/sandbox/app-pay{query}", order_str.encode(), "text/plain")
    assert status == 200
    return result


def trade(stack, out_trade_no: str) -> dict:
    return http("GET", f"{stack.url}/sandbox/trades/{out_trade_no}")[1]


def acknowledged(stack, out_trade_no: str) -> dict:
    return wait_until(lambda: trade(stack, out_trade_no), lambda t: any(d["acknowledged"] for d in t["deliveries"]))


def order(stack, out_trade_no: str) -> tuple:
    return http("GET", f"{stack.url}/orders/{out_trade_no}")


def test_pay_then_alipay_pays_then_notify_then_the_order_is_paid(stack):
    order_str, out_trade_no = pay(stack)
    assert order(stack, out_trade_no)[1]["data"]["status"] == 0

    result = app_pay(stack, order_str)
    assert result["resultStatus"] == "9000", result
    response = json.loads(result["result"])["alipay_trade_app_pay_response"]
    assert response["out_trade_no"] == out_trade_no and response["total_amount"] == "198.01"

    deliveries = acknowledged(stack, out_trade_no)["deliveries"]
    assert [(d["http_status"], d["answer"]) for d in deliveries] == [(200, "success")]
    status, body = order(stack, out_trade_no)
    assert status == 200 and body["data"]["status"] == 1 and body["data"]["totalAmount"] == 19801 and body["data"]["payDate"]


def test_lost_answers_make_alipay_retry_and_the_order_is_paid_exactly_once(stack):
    order_str, out_trade_no = pay(stack)
    assert app_pay(stack, order_str, "?lost_answers=2")["resultStatus"] == "9000"

    deliveries = acknowledged(stack, out_trade_no)["deliveries"]
    assert [d["attempt"] for d in deliveries] == [1, 2, 3]
    assert [d["acknowledged"] for d in deliveries] == [False, False, True]
    assert all(d["http_status"] == 200 for d in deliveries)  # every retry reached the handler
    # The handler's own log: one transition, then two duplicates recognised as such.
    handled = stack.log_lines(f"notify {out_trade_no} -> ")
    assert len(handled) == 3
    assert sum("TRADE_SUCCESS: applied" in line for line in handled) == 1
    assert sum("TRADE_SUCCESS: already" in line for line in handled) == 2
    assert order(stack, out_trade_no)[1]["data"]["status"] == 1


def test_our_own_failure_answers_fail_and_alipays_retry_pays_the_order_exactly_once(stack):
    """DynamoDB refuses pay_notify's write on every attempt botocore makes: the handler answers
    ``fail`` with nothing written, and the emulator's next delivery is applied."""
    order_str, out_trade_no = pay(stack)
    attempts = repository.DYNAMODB.attempts  # one delivery's UpdateItem, botocore's retries included
    arm = json.dumps({"dynamodb": {"fail_next": attempts, "code": "ProvisionedThroughputExceededException"}}).encode()
    status, armed = http("POST", f"{stack.url}/local/faults", arm, "application/json")
    assert status == 200 and armed["dynamodb"]["pending"] == attempts, armed
    assert app_pay(stack, order_str)["resultStatus"] == "9000"

    deliveries = acknowledged(stack, out_trade_no)["deliveries"]
    assert [(d["attempt"], d["http_status"], d["answer"], d["acknowledged"]) for d in deliveries] == [
        (1, 200, "fail", False), (2, 200, "success", True)
    ]
    faults = http("GET", f"{stack.url}/local/faults")[1]["dynamodb"]
    assert (faults["pending"], faults["injected"]) == (0, attempts)  # all spent on the first delivery
    failed = [line for line in stack.log_lines("pay_notify.handler failed") if out_trade_no in line]
    assert len(failed) == 1 and "ProvisionedThroughputExceededException" in failed[0] and "UpdateItem" in failed[0]
    handled = stack.log_lines(f"notify {out_trade_no} -> ")
    assert len(handled) == 1 and "success (TRADE_SUCCESS: applied)" in handled[0]  # one transition
    assert order(stack, out_trade_no)[1]["data"]["status"] == 1


def test_the_fault_switch_refuses_what_it_cannot_arm(stack):
    for bad in (b"{", b"[]", b'{"s3": {"fail_next": 1}}', b'{"dynamodb": {"fail_next": -1}}',
                b'{"dynamodb": {"fail_next": true}}', b'{"dynamodb": {"fail_next": 1, "code": "Nope"}}',
                b'{"dynamodb": {"fail_next": 1, "code": []}}'):
        status, body = http("POST", f"{stack.url}/local/faults", bad, "application/json")
        assert status == 400 and body["message"], bad
    assert http("GET", f"{stack.url}/local/faults")[1]["dynamodb"]["pending"] == 0


def test_the_buyer_gives_up_and_the_order_is_closed(stack):
    order_str, out_trade_no = pay(stack)
    assert app_pay(stack, order_str, "?outcome=closed")["resultStatus"] == "6001"
    assert acknowledged(stack, out_trade_no)["status"] == "TRADE_CLOSED"
    assert order(stack, out_trade_no)[1]["data"] == {"outTradeNo": out_trade_no, "status": 2, "totalAmount": 19801, "payDate": None, "refundedAmount": 0, "refunds": []}


def test_a_dropped_notify_leaves_the_order_unpaid_while_alipay_knows_it_paid(stack, local_dir: Path):
    order_str, out_trade_no = pay(stack)
    assert app_pay(stack, order_str, "?outcome=drop")["resultStatus"] == "9000"
    assert trade(stack, out_trade_no)["deliveries"] == [] and order(stack, out_trade_no)[1]["data"]["status"] == 0

    app, ali = keys.local_keys(local_dir)
    status, text = http("POST", f"{stack.url}/sandbox/gateway.do", query_body(app, out_trade_no), FORM, parse=False)
    assert status == 200
    prefix = '{"alipay_trade_query_response":'
    content, sign = text[len(prefix):text.rindex(',"sign":"')], json.loads(text)["sign"]
    assert text.startswith(prefix) and signing.rsa2_verify(ali.public_key, content, sign)  # over the raw text
    response = json.loads(content)
    assert (response["code"], response["trade_status"], response["total_amount"]) == ("10000", "TRADE_SUCCESS", "198.01")


def test_unknown_paths_answer_like_api_gateway(stack):
    assert http("GET", f"{stack.url}/nope") == (404, {"message": "Not Found"})
    assert http("GET", f"{stack.url}/pay")[0] == 404  # POST-only route
    assert order(stack, "ORDER_0_unknown") == (404, {"code": 404, "data": None, "msg": "order not found"})


def test_a_bad_request_is_400_and_writes_nothing(stack):
    status, body = http("POST", f"{stack.url}/pay", b'{"productId": "P"}', "application/json")
    assert status == 400 and body["data"] is None and body["msg"]


@pytest.mark.oracle
def test_the_official_sdk_verifies_the_emulators_signed_query_response(stack, local_dir):
    """alipay-sdk-python's response check (its ``DefaultAlipayClient`` cannot dial a URL with a
    port, a bug in its WebUtils, so the bytes are fetched here and handed to its parser)."""
    from alipay.aop.api.AlipayClientConfig import AlipayClientConfig
    from alipay.aop.api.constant.CommonConstants import THREAD_LOCAL
    from alipay.aop.api.DefaultAlipayClient import DefaultAlipayClient

    order_str, out_trade_no = pay(stack)
    app_pay(stack, order_str, "?outcome=drop")
    app, ali = keys.local_keys(local_dir)
    config = AlipayClientConfig()
    config.app_id = "2021000000000001"
    config.app_private_key = app.private_base64(pkcs8=False)
    config.alipay_public_key = ali.public_base64()
    status, text = http("POST", f"{stack.url}/sandbox/gateway.do", query_body(app, out_trade_no), FORM, parse=False)
    THREAD_LOCAL.logger, THREAD_LOCAL.uuid = None, "e2e"  # what execute() would have set
    parse = DefaultAlipayClient(config)._DefaultAlipayClient__parse_response
    response = json.loads(parse(text.encode("utf-8")))  # raises when the sign does not verify
    assert (response["code"], response["trade_status"], response["out_trade_no"]) == ("10000", "TRADE_SUCCESS", out_trade_no)
    with pytest.raises(Exception, match="sign verify failed"):
        parse(text.replace("TRADE_SUCCESS", "TRADE_CLOSED").encode("utf-8"))
