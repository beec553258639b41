"""Interface content encryption end to end: with ALIPAY_AES_KEY (or its _SSM form) every request
pay, reconcile and refund send is encrypted, the emulator decrypts it and answers encrypted, and
a request in clear is refused once the app turned encryption on (as Alipay refuses it)."""
import base64
import json
import os

import boto3
import pytest

from local import cashier
from tests.unit.test_sandbox_channels import cashier_choice

from functions.pay.handler import handler as pay
from local.sandbox import parse_form
from shared import config, secrets
from shared.alipay import aes
from shared.alipay import gateway as gateway_module

from tests.conftest import pay_event
from tests.emulated_alipay import EmulatedAlipay
from tests.functional.test_jsapi import Sent

KEY = os.urandom(16)
ORDER = {"productId": "P1", "userId": "U1", "orderName": "数据恢复产品 A", "total_amount": "198.01"}


@pytest.fixture
def emulator(env, monkeypatch, app_keys, alipay_keys):
    monkeypatch.setenv("ALIPAY_AES_KEY", base64.b64encode(KEY).decode())
    monkeypatch.setenv("ALIPAY_RETURN_URL", "https://shop.example.com/pay/return")
    config.reset()
    emulator = EmulatedAlipay(app_keys, alipay_keys)
    emulator.sandbox.notifier = Sent()
    emulator.sandbox.aes_key = KEY
    real = emulator.sandbox.gateway
    emulator.answers = []

    def gateway(query, body):  # keep what went over the wire
        emulator.wire = {**parse_form(query), **parse_form(body)}
        status, kind, answer = real(query, body)
        emulator.answers.append(answer)
        return status, kind, answer

    emulator.sandbox.gateway = gateway
    monkeypatch.setattr(gateway_module, "http_post", emulator)
    return emulator


@pytest.mark.parametrize("channel, extra, answer_field", [
    ("precreate", {}, "qrCode"),
    ("jsapi", {"buyerId": "2088102177846881"}, "tradeNo"),
    ("barcode", {"authCode": "28763443825664394"}, "status"),
])
def test_gateway_channels_talk_encrypted(emulator, store, channel, extra, answer_field):
    reply = pay(pay_event({**ORDER, "channel": channel, **extra}))
    assert reply["statusCode"] == 200, reply
    assert answer_field in json.loads(reply["body"])["data"]
    assert emulator.wire["encrypt_type"] == "AES"
    assert json.loads(aes.decrypt(emulator.wire["biz_content"], KEY))["total_amount"] == "198.01"
    answer = json.loads(emulator.answers[-1])
    response = next(value for key, value in answer.items() if key.endswith("_response"))
    assert isinstance(response, str) and json.loads(aes.decrypt(response, KEY))["code"] == "10000"  # ciphertext on the wire


@pytest.mark.parametrize("channel", ["app", "page"])
def test_order_str_and_page_requests_are_encrypted_and_the_emulator_takes_them(emulator, store, channel):
    reply = pay(pay_event({**ORDER, "channel": channel}))
    data = json.loads(reply["body"])["data"]
    if channel == "app":
        params = parse_form(data["orderStr"].encode())
        assert emulator.sandbox.app_pay(data["orderStr"].encode())["resultStatus"] == "9000"
    else:
        query = data["payUrl"].split("?", 1)[1].encode()
        params = parse_form(query)
        status, _, page = emulator.sandbox.gateway(query, b"")  # the cashier decrypted the request: it shows the order
        assert status == 200 and "198.01" in page.decode()
        status, _, paid = cashier.act(emulator.sandbox, cashier_choice(page, "pay"))  # the buyer presses pay
        assert status == 200 and "已支付" in paid.decode()
    assert params["encrypt_type"] == "AES" and json.loads(aes.decrypt(params["biz_content"], KEY))["subject"] == "数据恢复产品 A"
    assert emulator.trade(data["outTradeNo"]).status == "TRADE_SUCCESS"


def test_a_request_in_clear_is_refused_once_encryption_is_on(emulator, store, monkeypatch):
    monkeypatch.delenv("ALIPAY_AES_KEY")
    config.reset()
    reply = pay(pay_event({**ORDER, "channel": "precreate"}))
    assert reply["statusCode"] == 502 and "isv.invalid-encrypt" in json.loads(reply["body"])["msg"]


def test_the_key_may_live_in_ssm(emulator, dynamodb, monkeypatch):
    boto3.client("ssm").put_parameter(Name="/test/aes-key", Value=base64.b64encode(KEY).decode(), Type="SecureString")
    monkeypatch.delenv("ALIPAY_AES_KEY")
    monkeypatch.setenv("ALIPAY_AES_KEY_SSM", "/test/aes-key")
    config.reset()
    secrets.cache.clear()
    try:
        reply = pay(pay_event({**ORDER, "channel": "precreate"}))
    finally:
        secrets.cache.clear()
    assert reply["statusCode"] == 200, reply
    assert emulator.wire["encrypt_type"] == "AES"


def test_a_malformed_key_is_a_configuration_error_and_nothing_is_written(emulator, dynamodb, monkeypatch):
    monkeypatch.setenv("ALIPAY_AES_KEY", "not-a-key")
    config.reset()
    reply = pay(pay_event({**ORDER, "channel": "precreate"}))
    assert reply["statusCode"] == 500 and emulator.calls == []
    assert dynamodb.scan(TableName="alipay-app-pay-test-Order")["Items"] == []
