"""Where pay's price comes from (PRICE_SOURCE), and paying an order the shop's backend stored
beforehand (POST /pay {"outTradeNo"}), through the real handlers on moto's DynamoDB."""
from __future__ import annotations

import json
import logging
from datetime import timedelta
from urllib.parse import parse_qsl

import pytest

from functions.add_order.handler import handler as add_order
from functions.pay.handler import handler as pay
from functions.pay_notify.handler import handler as pay_notify
from local import alipay, schema
from shared import config
from shared.alipay import gateway as gateway_module
from shared.domain import clock
from shared.domain.orders import PAID, UNPAID

from tests import sdk_oracle as oracle
from tests.conftest import APP_ID, notify_event, pay_event, stored_items
from tests.fake_alipay import FakeAlipay

PURCHASE = {"productId": "PROD_A", "userId": "U1", "orderName": "数据恢复产品 A", "total_amount": "0.01"}
STORED = {"productId": "SKU-9", "userId": "U1", "orderName": "年度会员 (backend order)", "totalAmount": 19801}


def answer(reply):
    return reply["statusCode"], json.loads(reply["body"])


def use(monkeypatch, **variables):
    for name, value in variables.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    config.reset()


# --- PRICE_SOURCE -----------------------------------------------------------------------------

def test_the_default_without_a_catalog_is_a_500_and_a_loud_line_never_the_clients_price(dynamodb, monkeypatch, caplog):
    use(monkeypatch, PRICE_SOURCE=None, PRODUCT_CATALOG=None)
    with caplog.at_level(logging.ERROR):
        status, body = answer(pay(pay_event(PURCHASE)))
    assert (status, body["data"], body["msg"]) == (500, None, "server configuration error")
    assert stored_items(dynamodb) == []
    (line,) = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "PRODUCT_CATALOG is missing, and PRICE_SOURCE is catalog (the default)" in line.getMessage()


def test_an_explicit_catalog_source_without_a_catalog_is_the_same_500(dynamodb, monkeypatch):
    use(monkeypatch, PRICE_SOURCE="catalog", PRODUCT_CATALOG=None)
    assert pay(pay_event(PURCHASE))["statusCode"] == 500
    assert stored_items(dynamodb) == []


@pytest.mark.parametrize("value", ["clients", "true", "1", "catalog,client"])
def test_an_unknown_price_source_is_a_configuration_error(dynamodb, monkeypatch, caplog, value):
    use(monkeypatch, PRICE_SOURCE=value)
    with caplog.at_level(logging.ERROR):
        assert pay(pay_event(PURCHASE))["statusCode"] == 500
    assert any("PRICE_SOURCE is malformed" in r.getMessage() for r in caplog.records)
    assert stored_items(dynamodb) == []


def test_client_and_a_catalog_together_are_refused_rather_than_one_silently_winning(dynamodb, monkeypatch, tmp_path):
    path = tmp_path / "products.json"
    path.write_text('{"products": {"PROD_A": {"price": "198.01"}}}', encoding="utf-8")
    use(monkeypatch, PRICE_SOURCE="client", PRODUCT_CATALOG=str(path))
    assert pay(pay_event(PURCHASE))["statusCode"] == 500
    assert stored_items(dynamodb) == []


def test_price_source_client_is_a_warning_when_the_container_starts(env, monkeypatch, caplog):
    use(monkeypatch, PRICE_SOURCE="client")
    with caplog.at_level(logging.WARNING):
        config.announce_price_source()  # what functions/pay/handler.py runs at import
    (line,) = [r for r in caplog.records if r.name == "shared.config"]
    assert line.levelno == logging.WARNING and "PRICE_SOURCE=client" in line.getMessage()


def test_the_catalog_default_announces_nothing(env, monkeypatch, caplog):
    use(monkeypatch, PRICE_SOURCE=None)
    with caplog.at_level(logging.DEBUG):
        config.announce_price_source()
    assert [r for r in caplog.records if r.name == "shared.config"] == []


def test_price_source_orders_refuses_product_requests(dynamodb, monkeypatch):
    use(monkeypatch, PRICE_SOURCE="orders")
    status, body = answer(pay(pay_event(PURCHASE)))
    assert status == 400 and "send the outTradeNo of your order" in body["msg"]
    assert stored_items(dynamodb) == []


# --- an order stored beforehand -----------------------------------------------------------------

@pytest.fixture(params=["client", "catalog", "orders"])
def source(request, dynamodb, monkeypatch, tmp_path):
    """Every PRICE_SOURCE pays stored orders (their price was set by the shop's backend)."""
    catalog = None
    if request.param == "catalog":
        catalog = tmp_path / "products.json"
        catalog.write_text('{"products": {"PROD_A": {"price": "0.01"}}}', encoding="utf-8")
    use(monkeypatch, PRICE_SOURCE=request.param, PRODUCT_CATALOG=str(catalog) if catalog else None)
    return request.param


def stored(**fields) -> str:
    reply = add_order({**STORED, **fields})
    assert reply["code"] == 200, reply
    return reply["data"]["orderNum"]


def biz(order_str: str) -> dict:
    return json.loads(dict(parse_qsl(order_str))["biz_content"])


def test_a_stored_order_is_signed_with_its_stored_amount_and_subject(source, dynamodb, store, alipay_keys):
    number = stored()
    status, body = answer(pay(pay_event({"outTradeNo": number})))
    assert status == 200, body
    assert body["data"]["outTradeNo"] == number
    signed = biz(body["data"]["orderStr"])
    assert (signed["out_trade_no"], signed["total_amount"], signed["subject"]) == (number, "198.01", STORED["orderName"])
    assert len(stored_items(dynamodb)) == 1  # pay wrote no second row
    notify = alipay.sign_notify(alipay.notify_params(app_id=APP_ID, out_trade_no=number, total_amount="198.01"),
                                alipay_keys.private_key)
    assert pay_notify(notify_event(notify))["body"] == "success"
    assert store.get(number).status == PAID


@pytest.mark.parametrize("channel, method", [("page", "alipay.trade.page.pay"), ("wap", "alipay.trade.wap.pay")])
def test_page_and_wap_pay_a_stored_order(source, dynamodb, channel, method):
    number = stored()
    status, body = answer(pay(pay_event({"outTradeNo": number, "channel": channel})))
    assert status == 200, body
    _, params = oracle.query(body["data"]["payUrl"])
    assert params["method"] == method
    assert biz_of(params) == (number, "198.01", STORED["orderName"])
    assert len(stored_items(dynamodb)) == 1


def biz_of(params) -> tuple:
    content = json.loads(params["biz_content"])
    return content["out_trade_no"], content["total_amount"], content["subject"]


def test_precreate_pays_a_stored_order_without_a_second_row(source, dynamodb, monkeypatch, app_keys, alipay_keys):
    fake = FakeAlipay(app_keys, alipay_keys)
    monkeypatch.setattr(gateway_module, "http_post", fake)
    number = stored()
    status, body = answer(pay(pay_event({"outTradeNo": number, "channel": "precreate"})))
    assert status == 200, body
    (method, content), = fake.calls
    assert method == "alipay.trade.precreate"
    assert (content["out_trade_no"], content["total_amount"], content["subject"]) == (number, "198.01", STORED["orderName"])
    assert len(stored_items(dynamodb)) == 1


def test_a_client_amount_equal_by_value_is_accepted_and_one_that_differs_refused(source, dynamodb):
    number = stored()
    assert pay(pay_event({"outTradeNo": number, "total_amount": "198.010"}))["statusCode"] == 200
    status, body = answer(pay(pay_event({"outTradeNo": number, "total_amount": "0.01"})))
    assert status == 400 and f"differs from order {number} (198.01)" in body["msg"]


@pytest.mark.parametrize("extra", [{"productId": "PROD_A"}, {"orderName": "cheaper"}, {"body": "x"}])
def test_restating_the_orders_own_fields_is_refused(source, dynamodb, extra):
    number = stored()
    status, body = answer(pay(pay_event({"outTradeNo": number, **extra})))
    assert status == 400 and "must not be sent with outTradeNo" in body["msg"]


@pytest.mark.parametrize("value", ["ORDER 1", "x" * 65, 12, ["ORDER_1"], "ORDER_1\n"])
def test_a_malformed_out_trade_no_is_400(source, dynamodb, value):
    status, body = answer(pay(pay_event({"outTradeNo": value})))
    assert status == 400 and "outTradeNo must be" in body["msg"]


def test_an_unknown_order_is_404(source, dynamodb):
    status, body = answer(pay(pay_event({"outTradeNo": "ORDER_1_nosuchorder00"})))
    assert (status, body["data"]) == (404, None)
    assert stored_items(dynamodb) == []


def authorized(payload, sub):
    event = pay_event(payload)
    event["requestContext"]["authorizer"] = {"jwt": {"claims": {"sub": sub}}}
    return event


def test_with_a_jwt_the_order_must_be_the_callers_and_anothers_answers_as_unknown(source, dynamodb):
    number = stored(userId="cognito-sub-0001")
    assert pay(authorized({"outTradeNo": number}, "cognito-sub-0001"))["statusCode"] == 200
    mine, theirs = answer(pay(authorized({"outTradeNo": number}, "cognito-sub-0002"))), answer(
        pay(pay_event({"outTradeNo": "ORDER_1_nosuchorder00"})))
    assert mine[0] == 404 and mine[1]["msg"] == f"no order {number}"  # the same answer as a missing order
    assert theirs[0] == 404
    assert answer(pay(authorized({"outTradeNo": number, "userId": "cognito-sub-0002"}, "cognito-sub-0001")))[0] == 403


def test_without_a_jwt_a_body_user_id_must_match_too(source, dynamodb):
    number = stored()
    assert pay(pay_event({"outTradeNo": number, "userId": "U1"}))["statusCode"] == 200
    assert pay(pay_event({"outTradeNo": number, "userId": "U2"}))["statusCode"] == 404


def test_a_paid_or_closed_order_is_409(source, dynamodb, store):
    paid, closed = stored(), stored()
    store.mark_paid(paid, 19801, "2026120222001400000000000001", clock.iso())
    store.mark_closed(closed, 19801)
    assert answer(pay(pay_event({"outTradeNo": paid}))) == (409, {"code": 409, "data": None, "msg": f"order {paid} is already paid"})
    status, body = answer(pay(pay_event({"outTradeNo": closed})))
    assert status == 409 and "closed; create a new order" in body["msg"]
    assert store.get(closed).status != UNPAID and store.get(paid).status == PAID


def test_the_trade_never_outlives_the_orders_payment_window(source, dynamodb, store, monkeypatch):
    number = stored()
    first = biz(answer(pay(pay_event({"outTradeNo": number})))[1]["data"]["orderStr"])
    assert first["timeout_express"] in ("29m", "30m")
    later = clock.now() + timedelta(minutes=22, seconds=30)  # 7.5 minutes of the 30 left
    monkeypatch.setattr(clock, "now", lambda: later)
    assert biz(answer(pay(pay_event({"outTradeNo": number})))[1]["data"]["orderStr"])["timeout_express"] == "7m"
    too_late = later + timedelta(minutes=7, seconds=1)
    monkeypatch.setattr(clock, "now", lambda: too_late)
    status, body = answer(pay(pay_event({"outTradeNo": number})))
    assert status == 409 and "past its payment window" in body["msg"]
    assert store.get(number).status == UNPAID  # reconcile closes it; pay only refuses


def test_an_idempotency_key_replays_a_stored_orders_request(source, dynamodb, monkeypatch):
    table = "alipay-app-pay-test-Idempotency"
    dynamodb.create_table(**schema.create_table_kwargs(table, "IdempotencyTable"))
    use(monkeypatch, IDEMPOTENCY_TABLE=table)
    number = stored()
    event = pay_event({"outTradeNo": number})
    event["headers"]["idempotency-key"] = "k-1"
    first, again = pay(event), pay(event)
    assert first["statusCode"] == again["statusCode"] == 200
    assert again["headers"].get("Idempotent-Replayed") == "true"
    assert json.loads(first["body"])["data"] == json.loads(again["body"])["data"]
    other = pay_event({"outTradeNo": stored()})
    other["headers"]["idempotency-key"] = "k-1"
    assert pay(other)["statusCode"] == 422  # the same key for another order is a misuse
