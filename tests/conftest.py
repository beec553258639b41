"""Fixtures: real RSA keys, a real (moto) DynamoDB table, and Alipay played by local.alipay."""
from __future__ import annotations

import json
from typing import Any, Dict

import boto3
import pytest
from moto import mock_aws

from local import alipay, events, schema
from shared import config
from shared.aws import repository

APP_ID = "2021000000000001"
SELLER_ID = "2088000000000001"
NOTIFY_URL = "https://pay.example.com/pay/notify"
TABLE = "alipay-app-pay-test-Order"


@pytest.fixture(scope="session")
def app_keys() -> alipay.KeyPair:
    return alipay.KeyPair.generate()


@pytest.fixture(scope="session")
def alipay_keys() -> alipay.KeyPair:
    return alipay.KeyPair.generate()


@pytest.fixture
def env(monkeypatch, app_keys, alipay_keys) -> Dict[str, str]:
    values = {
        "ALIPAY_APP_ID": APP_ID,
        "ALIPAY_APP_PRIVATE_KEY": app_keys.private_pem(),
        "ALIPAY_PUBLIC_KEY": alipay_keys.public_base64(),
        "ALIPAY_NOTIFY_URL": NOTIFY_URL,
        "ALIPAY_SELLER_ID": SELLER_ID,
        "ORDER_TABLE": TABLE,
        # Most tests name their own prices; the default (catalog) and the other sources are
        # tested in tests/functional/test_price_source.py.
        "PRICE_SOURCE": "client",
        "AWS_DEFAULT_REGION": "ap-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    config.reset()
    repository.reset()
    yield values
    config.reset()
    repository.reset()


@pytest.fixture
def dynamodb(env):
    """moto's DynamoDB with the Order table created from serverless.yml's definition."""
    with mock_aws():
        client = boto3.client("dynamodb")
        schema.create_order_table(client, TABLE)
        yield client


@pytest.fixture
def store(dynamodb):
    return repository.DynamoOrderRepository(TABLE, dynamodb)


def pay_event(payload: Any, *, raw: bytes | None = None) -> Dict[str, Any]:
    body = raw if raw is not None else json.dumps(payload).encode()
    return events.http_event("POST", "/pay", body, {"content-type": "application/json"})


def notify_event(params: Dict[str, str]) -> Dict[str, Any]:
    return events.http_event(
        "POST", "/pay/notify", alipay.form_body(params),
        {"content-type": "application/x-www-form-urlencoded; charset=utf-8"},
    )


def stored_items(client) -> list:
    return client.scan(TableName=TABLE)["Items"]
