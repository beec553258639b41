"""Forged and broken notifies through the real handler and table: every one answered ``fail``,
the table unchanged. Hypothesis budgets: 300 + 150 + 150 + 100 + 100 + 100 + 100 = 1,000 cases."""
from __future__ import annotations

import base64
from typing import List, Tuple
from urllib.parse import quote_plus

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from functions.pay_notify.handler import handler as pay_notify
from local import alipay, events
from shared.alipay.notify import verify_notify
from shared.domain.orders import PAID, UNPAID, Order

from tests.conftest import APP_ID, SELLER_ID, notify_event, stored_items

ORDER = "ORDER_1764150000000_forgedtarget"
FORM = {"content-type": "application/x-www-form-urlencoded; charset=utf-8"}
SETTINGS = dict(deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])

Pairs = List[Tuple[str, str]]
values = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
nonempty_values = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40)
keys = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=20)


def genuine(alipay_keys) -> dict:
    params = alipay.notify_params(app_id=APP_ID, out_trade_no=ORDER, total_amount="198.01", seller_id=SELLER_ID)
    return alipay.sign_notify(params, alipay_keys.private_key)


def body_of(pairs: Pairs) -> bytes:
    return "&".join(f"{quote_plus(k)}={quote_plus(v)}" for k, v in pairs).encode("ascii")


def deliver(pairs: Pairs) -> str:
    return pay_notify(events.http_event("POST", "/pay/notify", body_of(pairs), FORM))["body"]


@pytest.fixture
def target(store, dynamodb, alipay_keys):
    """One unpaid order the forgeries aim at, and the table as it was before them."""
    store.create(Order(order_num=ORDER, product_id="P1", user_id="U1", order_name="o", total_cents=19801))
    before = stored_items(dynamodb)

    def unchanged() -> bool:
        return stored_items(dynamodb) == before and store.get(ORDER).status == UNPAID

    return genuine(alipay_keys), unchanged


def test_the_genuine_notify_is_accepted(target):
    """The control: without the forgery, the same delivery pays the order."""
    params, unchanged = target
    assert deliver(list(params.items())) == "success" and not unchanged()


@settings(max_examples=300, **SETTINGS)
@given(data=st.data())
def test_changing_any_one_field_is_rejected(target, data):
    params, unchanged = target
    pairs = list(params.items())
    index = data.draw(st.integers(0, len(pairs) - 1))
    key, value = pairs[index]
    if data.draw(st.booleans()):
        pairs[index] = (key, data.draw(values.filter(lambda v: v != value)))
    else:
        pairs[index] = (data.draw(keys.filter(lambda k: k not in params)), value)
    assert deliver(pairs) == "fail"
    assert unchanged()


@settings(max_examples=150, **SETTINGS)
@given(data=st.data())
def test_duplicated_fields_in_any_order_are_rejected(target, data):
    params, unchanged = target
    pairs = data.draw(st.permutations(list(params.items())))
    key = data.draw(st.sampled_from(sorted(params)))
    twin = (key, data.draw(st.one_of(st.just(params[key]), values)))
    pairs.insert(data.draw(st.integers(0, len(pairs))), twin)
    assert deliver(pairs) == "fail"
    assert unchanged()


@settings(max_examples=150, **SETTINGS)
@given(data=st.data())
def test_injected_fields_are_rejected(target, data):
    """Any extra non-empty field changes the signed content. (An extra *empty* field does not:
    Alipay's rule drops empty values, so it carries no data and is no forgery.)"""
    params, unchanged = target
    pairs = list(params.items())
    extras = data.draw(st.lists(st.tuples(keys.filter(lambda k: k not in params), nonempty_values),
                                min_size=1, max_size=3, unique_by=lambda kv: kv[0]))
    for extra in extras:
        pairs.insert(data.draw(st.integers(0, len(pairs))), extra)
    assert deliver(pairs) == "fail"
    assert unchanged()


@settings(max_examples=100, **SETTINGS)
@given(amount=st.decimals(min_value="0.01", max_value="100000000", places=2),
       status=st.sampled_from(["TRADE_SUCCESS", "TRADE_FINISHED", "TRADE_CLOSED"]))
def test_another_keys_signature_is_rejected(target, app_keys, amount, status):
    """Well-formed notifies, signed by a key that is not Alipay's (our own app key, here)."""
    _, unchanged = target
    params = alipay.notify_params(app_id=APP_ID, out_trade_no=ORDER, total_amount=str(amount), trade_status=status,
                                  seller_id=SELLER_ID)
    assert deliver(list(alipay.sign_notify(params, app_keys.private_key).items())) == "fail"
    assert unchanged()


@settings(max_examples=100, **SETTINGS)
@given(data=st.data())
def test_a_missing_or_mangled_sign_is_rejected(target, alipay_keys, data):
    params, unchanged = target
    pairs = [(k, v) for k, v in params.items() if k != "sign"]
    how = data.draw(st.sampled_from(["drop", "empty", "random", "truncated", "other-notify"]))
    if how != "drop":
        sign = {
            "empty": "",
            "random": base64.b64encode(data.draw(st.binary(min_size=1, max_size=300))).decode(),
            "truncated": params["sign"][: data.draw(st.integers(0, len(params["sign"]) - 1))],
            "other-notify": None,
        }[how]
        if how == "other-notify":  # Alipay's genuine signature, lifted from another notify
            other = alipay.notify_params(app_id=APP_ID, out_trade_no=ORDER, total_amount="0.01", seller_id=SELLER_ID)
            sign = alipay.sign_notify(other, alipay_keys.private_key)["sign"]
        pairs.append(("sign", sign))
    assert deliver(pairs) == "fail"
    assert unchanged()


@settings(max_examples=100, **SETTINGS)
@given(sign_type=st.one_of(st.sampled_from(["RSA", "rsa2", "RSA2 ", " RSA2", "SM2", "HMAC-SHA256", "MD5", ""]), values))
def test_another_sign_type_is_rejected(target, sign_type):
    params, unchanged = target
    if sign_type == "RSA2":
        sign_type = "RSA"
    assert deliver([(k, sign_type if k == "sign_type" else v) for k, v in params.items()]) == "fail"
    assert unchanged()


@settings(max_examples=100, **SETTINGS)
@given(data=st.data())
def test_reordering_fields_is_no_forgery_the_notify_reads_the_same(alipay_keys, data):
    """The signature covers the sorted fields, so order on the wire is immaterial: a reordered
    genuine notify verifies to exactly the same Notify (pure check, nothing written)."""
    params = genuine(alipay_keys)
    pairs = data.draw(st.permutations(list(params.items())))
    check = dict(public_key=alipay_keys.public_key, app_id=APP_ID, seller_id=SELLER_ID)
    assert verify_notify(body_of(pairs), **check) == verify_notify(body_of(list(params.items())), **check)


# --- unknown orders, broken bodies, amounts by value ---------------------------------------------

def test_unknown_out_trade_no_fails_and_creates_nothing(store, dynamodb, alipay_keys):
    params = alipay.notify_params(app_id=APP_ID, out_trade_no="ORDER_1_nobody", total_amount="1.00", seller_id=SELLER_ID)
    for status in ("TRADE_SUCCESS", "TRADE_CLOSED", "WAIT_BUYER_PAY"):
        params["trade_status"] = status
        assert pay_notify(notify_event(alipay.sign_notify(params, alipay_keys.private_key)))["body"] == "fail"
    assert stored_items(dynamodb) == []


BROKEN = {
    "oversized": (b"a=" + b"b" * 70_000, False),
    "oversized-base64": (base64.b64encode(b"a=" + b"b" * 70_000), True),
    "invalid-utf8-escaped": (b"subject=%FF%FE%FD&charset=utf-8", False),
    "invalid-gbk": (b"charset=gbk&subject=%81", False),
    "unknown-charset": (b"charset=utf-7&subject=x", False),
    "not-a-form": (b"{\"trade_status\": \"TRADE_SUCCESS\"}", False),
    "empty": (b"", False),
    "bad-base64": (b"@@not base64@@", True),
    "raw-binary": (bytes(range(256)), True),
    "too-many-fields": (b"&".join(b"k%d=v" % i for i in range(1000)), False),
    "nul-bytes": (b"out_trade_no=%00&sign=%00", False),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_bodies_answer_fail_without_crashing(store, dynamodb, name):
    raw, base64_encoded = BROKEN[name]
    event = events.http_event("POST", "/pay/notify", None, FORM)
    event["body"], event["isBase64Encoded"] = raw.decode("latin-1"), base64_encoded
    reply = pay_notify(event)
    assert (reply["statusCode"], reply["body"]) == (200, "fail")
    assert stored_items(dynamodb) == []


def test_a_null_event_body_answers_fail(store):
    assert pay_notify(events.http_event("POST", "/pay/notify", None, FORM))["body"] == "fail"


@pytest.mark.parametrize("stored, notified", [(110, "1.1"), (110, "1.10"), (110, "1.100"), (19800, "198"), (19800, "198.0")])
def test_amounts_with_trailing_zeros_compare_by_value(store, alipay_keys, stored, notified):
    store.create(Order(order_num="ORDER_1_value", product_id="P1", user_id="U1", order_name="o", total_cents=stored))
    params = alipay.notify_params(app_id=APP_ID, out_trade_no="ORDER_1_value", total_amount=notified, seller_id=SELLER_ID)
    assert pay_notify(notify_event(alipay.sign_notify(params, alipay_keys.private_key)))["body"] == "success"
    assert store.get("ORDER_1_value").status == PAID


def test_a_different_amount_is_refused_even_when_signed(store, alipay_keys):
    store.create(Order(order_num="ORDER_1_value", product_id="P1", user_id="U1", order_name="o", total_cents=110))
    params = alipay.notify_params(app_id=APP_ID, out_trade_no="ORDER_1_value", total_amount="1.11", seller_id=SELLER_ID)
    assert pay_notify(notify_event(alipay.sign_notify(params, alipay_keys.private_key)))["body"] == "fail"
    assert store.get("ORDER_1_value").status == UNPAID
