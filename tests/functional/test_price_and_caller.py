"""Price authority (the product catalog) and the caller from the JWT authorizer, not the body."""
from __future__ import annotations

import json
from urllib.parse import parse_qsl

import pytest

from functions.pay.handler import handler as pay
from shared import api, config

from tests.conftest import pay_event, stored_items

CATALOG = {"products": {"PROD_A": {"price": "198.01", "name": "数据恢复产品 A"}, "PROD_B": {"price": 5}}}


@pytest.fixture
def catalog(tmp_path, monkeypatch, dynamodb):
    path = tmp_path / "products.json"
    path.write_text(json.dumps(CATALOG, ensure_ascii=False), encoding="utf-8")
    monkeypatch.setenv("PRODUCT_CATALOG", str(path))
    monkeypatch.delenv("PRICE_SOURCE")  # the deployed default: catalog
    config.reset()
    return path


def purchase(**fields):
    return {"productId": "PROD_A", "userId": "U1", "orderName": "数据恢复产品 A", **fields}


def signed_amount(reply) -> str:
    order_str = json.loads(reply["body"])["data"]["orderStr"]
    return json.loads(dict(parse_qsl(order_str))["biz_content"])["total_amount"]


def stored_cents(client) -> list:
    return [int(i["totalAmount"]["N"]) for i in stored_items(client)]


def test_the_catalog_price_is_signed_and_stored_when_the_client_sends_none(catalog, dynamodb):
    reply = pay(pay_event(purchase()))
    assert reply["statusCode"] == 200, reply
    assert signed_amount(reply) == "198.01"
    assert stored_cents(dynamodb) == [19801]


@pytest.mark.parametrize("sent", ["198.01", "198.010", 198.01])
def test_a_client_amount_equal_by_value_is_accepted(catalog, dynamodb, sent):
    reply = pay(pay_event(purchase(total_amount=sent)))
    assert reply["statusCode"] == 200, reply
    assert signed_amount(reply) == "198.01"


@pytest.mark.parametrize("sent", ["0.01", "198.00", "198.02", "19801"])
def test_a_client_amount_that_differs_is_refused(catalog, dynamodb, sent):
    reply = pay(pay_event(purchase(total_amount=sent)))
    assert reply["statusCode"] == 400
    assert "differs from the price of PROD_A (198.01)" in json.loads(reply["body"])["msg"]
    assert stored_items(dynamodb) == []


def test_an_unknown_product_is_refused(catalog, dynamodb):
    reply = pay(pay_event(purchase(productId="PROD_Z", total_amount="1.00")))
    assert reply["statusCode"] == 400 and "unknown productId" in json.loads(reply["body"])["msg"]
    assert stored_items(dynamodb) == []


def test_integer_prices_in_the_catalog_are_yuan(catalog, dynamodb):
    assert pay(pay_event(purchase(productId="PROD_B")))["statusCode"] == 200
    assert stored_cents(dynamodb) == [500]


@pytest.mark.parametrize("document", ['{"products": {"P": {"price": "1.001"}}}', '{"products": {"P": {}}}',
                                      "[]", "not json", '{"products": {"P": {"price": 0}}}'])
def test_a_broken_catalog_fails_closed_as_a_configuration_error(tmp_path, monkeypatch, dynamodb, document):
    path = tmp_path / "products.json"
    path.write_text(document, encoding="utf-8")
    monkeypatch.setenv("PRODUCT_CATALOG", str(path))
    monkeypatch.delenv("PRICE_SOURCE")
    config.reset()
    reply = pay(pay_event(purchase(total_amount="198.01")))
    assert reply["statusCode"] == 500 and json.loads(reply["body"])["msg"] == "server configuration error"
    assert stored_items(dynamodb) == []


def test_a_missing_catalog_file_fails_closed(monkeypatch, dynamodb):
    monkeypatch.setenv("PRODUCT_CATALOG", "catalog/does-not-exist.json")
    monkeypatch.delenv("PRICE_SOURCE")
    config.reset()
    assert pay(pay_event(purchase(total_amount="198.01")))["statusCode"] == 500
    assert stored_items(dynamodb) == []


def test_with_price_source_client_the_client_amount_is_used(dynamodb):  # conftest's env opts in
    assert pay(pay_event(purchase(total_amount="3.00")))["statusCode"] == 200
    assert stored_cents(dynamodb) == [300]


# --- the caller -------------------------------------------------------------------------------

def authorized(payload, sub="cognito-sub-0001"):
    event = pay_event(payload)
    event["requestContext"]["authorizer"] = {"jwt": {"claims": {"sub": sub, "scope": "pay"}, "scopes": None}}
    return event


def stored_users(client) -> list:
    return [i["userId"]["S"] for i in stored_items(client)]


def test_the_jwt_sub_is_the_user_and_the_body_needs_none(dynamodb):
    body = purchase(total_amount="1.00")
    del body["userId"]
    assert pay(authorized(body))["statusCode"] == 200
    assert stored_users(dynamodb) == ["cognito-sub-0001"]


def test_a_body_naming_the_same_user_is_fine(dynamodb):
    assert pay(authorized(purchase(total_amount="1.00", userId="cognito-sub-0001")))["statusCode"] == 200
    assert stored_users(dynamodb) == ["cognito-sub-0001"]


def test_a_body_naming_another_user_is_refused(dynamodb):
    reply = pay(authorized(purchase(total_amount="1.00", userId="someone-else")))
    assert reply["statusCode"] == 403 and "userId differs" in json.loads(reply["body"])["msg"]
    assert stored_items(dynamodb) == []


@pytest.mark.parametrize("context, sub", [
    ({}, None),
    ({"authorizer": None}, None),
    ({"authorizer": {"jwt": {"claims": {}}}}, None),
    ({"authorizer": {"jwt": {"claims": {"sub": ""}}}}, None),
    ({"authorizer": {"jwt": {"claims": {"sub": 42}}}}, None),
    ({"authorizer": {"lambda": {"sub": "not-a-jwt"}}}, None),
    ({"authorizer": {"jwt": {"claims": {"sub": "abc"}}}}, "abc"),
])
def test_jwt_sub_reads_only_the_verified_claim(context, sub):
    assert api.jwt_sub({"requestContext": context}) == sub
    assert api.jwt_sub({}) is None
