"""functions/pay on moto: 200 with a verifiable orderStr and a row, or 400/500 and no row."""
import base64
import json

import pytest
from botocore.exceptions import ClientError

from functions.pay.handler import handler as pay
from shared.alipay import signing
from shared.domain.orders import UNPAID

from tests.conftest import APP_ID, NOTIFY_URL, pay_event, stored_items
from tests.sdk_oracle import query_params

GOOD = {"productId": "PROD_123456", "userId": "USER_789", "orderName": "数据恢复产品 A", "total_amount": 198.01}


def reply_of(response):
    return response["statusCode"], json.loads(response["body"])


def test_pay_creates_an_unpaid_order_and_a_signed_order_str(dynamodb, store, app_keys):
    status, body = reply_of(pay(pay_event(dict(GOOD, body="desc"))))
    assert status == 200 and body["code"] == 200 and body["msg"] == "ok"
    out_trade_no = body["data"]["outTradeNo"]
    params = query_params(body["data"]["orderStr"])
    assert signing.rsa2_verify(app_keys.public_key, signing.sign_content(params), params["sign"])
    assert (params["app_id"], params["method"], params["notify_url"]) == (APP_ID, "alipay.trade.app.pay", NOTIFY_URL)
    biz = json.loads(params["biz_content"])
    assert biz == {"out_trade_no": out_trade_no, "total_amount": "198.01", "subject": "数据恢复产品 A", "body": "desc",
                   "product_code": "QUICK_MSECURITY_PAY", "timeout_express": "30m"}
    order = store.get(out_trade_no)
    assert (order.status, order.total_cents, order.user_id, order.product_id, order.play_type) == (UNPAID, 19801, "USER_789", "PROD_123456", 0)
    assert order.order_date.endswith("+08:00")
    assert len(stored_items(dynamodb)) == 1


def test_json_numbers_are_read_exactly_not_as_floats(store):
    # 0.29 * 100 == 28.999999999999996 in binary floating point.
    _, body = reply_of(pay(pay_event(None, raw=b'{"productId":"p","userId":"u","orderName":"n","total_amount":0.29}')))
    assert store.get(body["data"]["outTradeNo"]).total_cents == 29


def test_base64_encoded_bodies_are_accepted(store):
    event = pay_event(GOOD)
    event["body"], event["isBase64Encoded"] = base64.b64encode(event["body"].encode()).decode(), True
    status, body = reply_of(pay(event))
    assert status == 200 and store.get(body["data"]["outTradeNo"])


def test_every_order_gets_its_own_out_trade_no(store):
    numbers = {reply_of(pay(pay_event(GOOD)))[1]["data"]["outTradeNo"] for _ in range(20)}
    assert len(numbers) == 20
    for number in numbers:
        assert number.startswith("ORDER_") and len(number) <= 64
        assert all(ch.isalnum() or ch == "_" for ch in number)


@pytest.mark.parametrize(
    "payload, msg",
    [
        ({k: v for k, v in GOOD.items() if k != "productId"}, "productId is required"),
        (dict(GOOD, userId=""), "userId is required"),
        (dict(GOOD, userId="   "), "userId must not be blank"),
        (dict(GOOD, userId=123), "userId must be a string"),
        (dict(GOOD, productId="p" * 65), "productId must be at most 64"),
        (dict(GOOD, orderName="n" * 257), "orderName must be at most 256"),
        (dict(GOOD, orderName="a\x00b"), "control characters"),
        (dict(GOOD, body="b" * 129), "body must be at most 128"),
        ({k: v for k, v in GOOD.items() if k != "total_amount"}, "total_amount is required"),
        (dict(GOOD, total_amount=0), "at least 0.01"),
        (dict(GOOD, total_amount="-1"), "at least 0.01"),
        (dict(GOOD, total_amount="1.001"), "two decimals"),
        (dict(GOOD, total_amount="100000000.01"), "must not exceed"),
        (dict(GOOD, total_amount=True), "decimal string or number"),
        (dict(GOOD, total_amount="NaN"), "finite"),
        (dict(GOOD, total_amount="abc"), "not a number"),
        ([1, 2], "JSON object"),
        ("text", "JSON object"),
    ],
)
def test_bad_input_is_400_with_a_clear_msg_and_writes_nothing(dynamodb, payload, msg):
    status, body = reply_of(pay(pay_event(payload)))
    assert status == 400 and body["code"] == 400 and body["data"] is None
    assert msg in body["msg"]
    assert stored_items(dynamodb) == []


@pytest.mark.parametrize("raw", [b"", b"not json", b'{"a":', b"\xff\xfe", b'{"total_amount": NaN}'])
def test_unparseable_bodies_are_400(dynamodb, raw):
    status, body = reply_of(pay(pay_event(None, raw=raw)))
    assert status == 400 and body["data"] is None
    assert stored_items(dynamodb) == []


def test_missing_config_is_500_before_anything_is_written(dynamodb, monkeypatch, caplog):
    monkeypatch.delenv("ALIPAY_APP_PRIVATE_KEY")
    status, body = reply_of(pay(pay_event(GOOD)))
    assert status == 500 and body["data"] is None
    assert "ALIPAY_APP_PRIVATE_KEY" in caplog.text
    assert stored_items(dynamodb) == []


def test_malformed_key_is_500_and_the_log_never_shows_it(dynamodb, monkeypatch, caplog, app_keys):
    broken = app_keys.private_base64()[:-60] + "B" * 60
    monkeypatch.setenv("ALIPAY_APP_PRIVATE_KEY", broken)
    status, _ = reply_of(pay(pay_event(GOOD)))
    assert status == 500
    assert "ALIPAY_APP_PRIVATE_KEY" in caplog.text and broken[:40] not in caplog.text
    assert stored_items(dynamodb) == []


def test_a_dynamodb_failure_is_500_without_an_order_str(dynamodb, store, monkeypatch):
    from shared.aws import repository

    def refuse(**kwargs):
        raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}}, "PutItem")

    monkeypatch.setattr(repository.dynamodb_client(), "put_item", refuse)
    status, body = reply_of(pay(pay_event(GOOD)))
    assert status == 500 and body["data"] is None and "orderStr" not in json.dumps(body)
    assert stored_items(dynamodb) == []
