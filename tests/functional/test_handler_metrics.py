"""The metrics lines pay and pay_notify print (shared/telemetry.py): valid EMF, one per invocation,
with the documented names and dimensions, for every outcome — a ``fail`` notify is an HTTP 200,
so these lines are the only way an alarm hears it."""
from __future__ import annotations

import json
from typing import List

import pytest

from functions.add_order.handler import handler as add_order
from functions.pay.handler import handler as pay
from functions.pay_notify.handler import handler as pay_notify
from local import alipay, events, schema
from shared import config, telemetry
from shared.alipay import gateway as gateway_module
from shared.aws import repository
from shared.domain import clock
from shared.domain.orders import Order

from tests import faults
from tests.faults import sleeps  # noqa: F401 - fixture
from tests.conftest import APP_ID, notify_event, pay_event
from tests.fake_alipay import FakeAlipay
from tests.unit.test_metrics import check_emf

ORDER = "ORDER_1795000000000_metrics01"
PURCHASE = {"productId": "P1", "userId": "U1", "orderName": "数据恢复产品 A", "total_amount": "198.01"}


@pytest.fixture
def named(env, monkeypatch):
    monkeypatch.setenv("METRICS_NAMESPACE", "alipay-app-pay-test")
    monkeypatch.delenv("METRICS_DISABLED", raising=False)


def emf_lines(capsys) -> List[dict]:
    """Every EMF line printed to stdout since the last call, checked against the spec's rules."""
    return [check_emf(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]


def only_line(capsys, service: str) -> dict:
    (line,) = emf_lines(capsys)
    assert line["Service"] == service
    assert line["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "alipay-app-pay-test"
    return line


# --- pay_notify -------------------------------------------------------------------------------

def notify_line(capsys, expected_outcome: str, answer: str) -> dict:
    line = only_line(capsys, "pay_notify")
    directive = line["_aws"]["CloudWatchMetrics"][0]
    assert directive["Dimensions"] == [["Service"], ["Service", "Outcome"]]
    assert directive["Metrics"] == [{"Name": "Notify", "Unit": "Count"}, {"Name": "NotifyFail", "Unit": "Count"}]
    assert (line["Outcome"], line["Notify"], line["NotifyFail"]) == (expected_outcome, 1, 0 if answer == "success" else 1)
    return line


@pytest.fixture
def order(named, store, monkeypatch):
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "alipay-app-pay-test-pay_notify")
    store.create(Order(ORDER, "P1", "U1", "subject", 19801))
    return store


def deliver(keys, **fields) -> str:
    params = alipay.notify_params(**(dict(app_id=APP_ID, out_trade_no=ORDER, total_amount="198.01") | fields))
    return pay_notify(notify_event(alipay.sign_notify(params, keys.private_key)))["body"]


def test_applied_then_duplicate(order, alipay_keys, capsys):
    assert deliver(alipay_keys) == "success"
    assert notify_line(capsys, "applied", "success")["orderNum"] == ORDER
    assert deliver(alipay_keys) == "success"
    notify_line(capsys, "duplicate", "success")


def test_wait_buyer_pay_is_acknowledged_without_a_change(order, alipay_keys, capsys):
    assert deliver(alipay_keys, trade_status="WAIT_BUYER_PAY") == "success"
    notify_line(capsys, "duplicate", "success")


@pytest.mark.parametrize("case, outcome", [
    ("another key", "bad_signature"),
    ("tampered amount", "bad_signature"),
    ("sign_type RSA", "bad_signature"),
    ("another app_id", "not_ours"),
    ("another seller_id", "not_ours"),
    ("amount differs", "amount_mismatch"),
    ("unknown order", "unknown_order"),
    ("unknown trade_status", "malformed"),
    ("not a form", "malformed"),
    ("bad base64", "malformed"),
])
def test_every_refusal_has_its_outcome_and_counts_as_a_fail(order, alipay_keys, capsys, case, outcome):
    base = dict(app_id=APP_ID, out_trade_no=ORDER, total_amount="198.01")
    if case == "another key":
        event = notify_event(alipay.sign_notify(alipay.notify_params(**base), alipay.KeyPair.generate().private_key))
    elif case == "tampered amount":
        signed = alipay.sign_notify(alipay.notify_params(**base), alipay_keys.private_key)
        event = notify_event({**signed, "total_amount": "0.01"})
    elif case == "sign_type RSA":
        event = notify_event({**alipay.sign_notify(alipay.notify_params(**base), alipay_keys.private_key), "sign_type": "RSA"})
    elif case == "not a form":
        event = events.http_event("POST", "/pay/notify", b"\xff\xfe binary", {"content-type": "application/octet-stream"})
    elif case == "bad base64":
        event = notify_event(alipay.notify_params(**base))
        event["body"] = "***not base64***"
    else:
        fields = {"another app_id": {"app_id": "2021000000000999"}, "another seller_id": {"seller_id": "2088000000000999"},
                  "amount differs": {"total_amount": "0.01"}, "unknown order": {"out_trade_no": "ORDER_1_unknown"},
                  "unknown trade_status": {"trade_status": "TRADE_WHATEVER"}}[case]
        event = notify_event(alipay.sign_notify(alipay.notify_params(**(base | fields)), alipay_keys.private_key))
    assert pay_notify(event)["body"] == "fail"
    notify_line(capsys, outcome, "fail")


def test_dynamodb_down_is_an_error(order, alipay_keys, capsys, sleeps):
    faults.Faults(repository.dynamodb_client(), "UpdateItem", [], forever=faults.UNAVAILABLE)
    assert deliver(alipay_keys) == "fail"
    notify_line(capsys, "error", "fail")


def test_a_configuration_error_is_an_error(order, alipay_keys, capsys, monkeypatch):
    monkeypatch.delenv("ALIPAY_PUBLIC_KEY")
    config.reset()
    assert deliver(alipay_keys) == "fail"
    notify_line(capsys, "error", "fail")


def test_the_documented_outcomes_are_the_ones_emitted():
    assert telemetry.NOTIFY_OUTCOMES == ("applied", "duplicate", "bad_signature", "not_ours", "amount_mismatch",
                                         "unknown_order", "malformed", "error")


# --- pay --------------------------------------------------------------------------------------

@pytest.fixture
def paying(named, dynamodb, monkeypatch, app_keys, alipay_keys):
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "alipay-app-pay-test-pay")
    fake = FakeAlipay(app_keys, alipay_keys)
    monkeypatch.setattr(gateway_module, "http_post", fake)
    return fake


def pay_line(capsys, metric: str, dimension: str, value: str) -> dict:
    line = only_line(capsys, "pay")
    directive = line["_aws"]["CloudWatchMetrics"][0]
    assert directive["Dimensions"] == [["Service"], ["Service", dimension]]
    assert directive["Metrics"] == [{"Name": metric, "Unit": "Count"}]
    assert (line[dimension], line[metric]) == (value, 1)
    return line


@pytest.mark.parametrize("channel", ["app", "page", "wap", "precreate"])
def test_a_payment_created_names_its_channel(paying, capsys, channel):
    reply = pay(pay_event({**PURCHASE, "channel": channel}))
    assert reply["statusCode"] == 200
    line = pay_line(capsys, "PaymentCreated", "Channel", channel)
    assert line["orderNum"] == json.loads(reply["body"])["data"]["outTradeNo"]


def authorized(payload, sub):
    event = pay_event(payload)
    event["requestContext"]["authorizer"] = {"jwt": {"claims": {"sub": sub}}}
    return event


def stored_order(**fields) -> str:
    return add_order({"productId": "SKU", "userId": "U1", "orderName": "x", "totalAmount": 100, **fields})["data"]["orderNum"]


@pytest.mark.parametrize("case, status, reason", [
    ("bad body", 400, "invalid_input"),
    ("price differs", 400, "price"),
    ("unknown product", 400, "price"),
    ("another user", 403, "not_the_caller"),
    ("unknown order", 404, "unknown_order"),
    ("paid order", 409, "not_payable"),
    ("key reused", 422, "idempotency_key"),
    ("alipay refuses", 502, "alipay_refused"),
    ("no key", 500, "configuration"),
    ("dynamodb down", 500, "error"),
])
def test_a_payment_refused_names_its_reason(paying, store, dynamodb, capsys, monkeypatch, tmp_path, sleeps, case, status, reason):
    event = pay_event(PURCHASE)
    if case == "bad body":
        event = pay_event({"productId": "P1"})
    elif case in ("price differs", "unknown product"):
        catalog = tmp_path / "products.json"
        catalog.write_text('{"products": {"P1": {"price": "1.00"}}}', encoding="utf-8")
        monkeypatch.setenv("PRODUCT_CATALOG", str(catalog))
        monkeypatch.delenv("PRICE_SOURCE")
        config.reset()
        event = pay_event(PURCHASE if case == "price differs" else {**PURCHASE, "productId": "P9"})
    elif case == "another user":
        event = authorized(PURCHASE, "someone-else")
    elif case == "unknown order":
        event = pay_event({"outTradeNo": "ORDER_1_unknown"})
    elif case == "paid order":
        number = stored_order()
        store.mark_paid(number, 100, "T1", clock.iso())
        capsys.readouterr()
        event = pay_event({"outTradeNo": number})
    elif case == "key reused":
        dynamodb.create_table(**schema.create_table_kwargs("alipay-app-pay-test-Idempotency", "IdempotencyTable"))
        monkeypatch.setenv("IDEMPOTENCY_TABLE", "alipay-app-pay-test-Idempotency")
        config.reset()
        first = pay_event(PURCHASE)
        first["headers"]["idempotency-key"] = "k1"
        assert pay(first)["statusCode"] == 200
        capsys.readouterr()
        event = pay_event({**PURCHASE, "total_amount": "1.00"})
        event["headers"]["idempotency-key"] = "k1"
    elif case == "alipay refuses":
        paying.error_next = {"code": "40004", "msg": "Business Failed", "sub_code": "ACQ.ACCESS_FORBIDDEN", "sub_msg": "no"}
        event = pay_event({**PURCHASE, "channel": "precreate"})
    elif case == "no key":
        monkeypatch.delenv("ALIPAY_APP_PRIVATE_KEY")
        config.reset()
    elif case == "dynamodb down":
        faults.Faults(repository.dynamodb_client(), "PutItem", [], forever=faults.UNAVAILABLE)
    assert pay(event)["statusCode"] == status
    pay_line(capsys, "PaymentRefused", "Reason", reason)


def test_metrics_disabled_prints_no_line_and_changes_no_answer(paying, capsys, monkeypatch):
    monkeypatch.setenv("METRICS_DISABLED", "1")
    assert pay(pay_event(PURCHASE))["statusCode"] == 200
    assert emf_lines(capsys) == []
