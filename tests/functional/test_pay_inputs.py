"""pay's bad-input catalog: each case answers 400 with a message that names the problem, and
nothing is written. A hypothesis fuzz over the body finds no 500 and no crash."""
from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from functions.pay.handler import handler as pay
from local import events

from tests.conftest import pay_event, stored_items

GOOD = {"productId": "P1", "userId": "U1", "orderName": "数据恢复产品 A", "total_amount": "198.01"}


def with_(**changes):
    body = dict(GOOD)
    for key, value in changes.items():
        if value is ...:
            body.pop(key)
        else:
            body[key] = value
    return body


CATALOG = [
    # missing / empty / blank
    ("missing productId", with_(productId=...), "productId is required"),
    ("missing userId", with_(userId=...), "userId is required"),
    ("missing orderName", with_(orderName=...), "orderName is required"),
    ("missing total_amount", with_(total_amount=...), "total_amount is required"),
    ("empty productId", with_(productId=""), "productId is required"),
    ("null userId", with_(userId=None), "userId is required"),
    ("blank orderName", with_(orderName=" \u3000 "), "orderName must not be blank"),
    ("empty total_amount", with_(total_amount=""), "total_amount is required"),
    # wrong types
    ("numeric productId", with_(productId=123), "productId must be a string"),
    ("list userId", with_(userId=["U1"]), "userId must be a string"),
    ("object orderName", with_(orderName={"zh": "A"}), "orderName must be a string"),
    ("boolean amount", with_(total_amount=True), "total_amount must be a decimal string or number"),
    ("list amount", with_(total_amount=["1.00"]), "total_amount must be a decimal string or number"),
    ("numeric body", with_(body=5), "body must be a string"),
    # amounts
    ("zero", with_(total_amount="0"), "at least 0.01"),
    ("zero number", with_(total_amount=0), "at least 0.01"),
    ("negative", with_(total_amount="-1.00"), "at least 0.01"),
    ("three decimals", with_(total_amount="1.001"), "at most two decimals"),
    ("three decimals number", with_(total_amount=1.005), "at most two decimals"),
    ("huge", with_(total_amount="100000000.01"), "must not exceed"),
    ("huge exponent", with_(total_amount="1e999999"), "must not exceed"),
    ("tiny exponent", with_(total_amount="1e-999999"), "at most two decimals"),
    ("beyond 28 digits", with_(total_amount="1.00000000000000000000000000001"), "at most two decimals"),
    ("NaN", with_(total_amount="NaN"), "finite"),
    ("Infinity", with_(total_amount="Infinity"), "finite"),
    ("words", with_(total_amount="ten yuan"), "not a number"),
    ("comma", with_(total_amount="1,00"), "not a number"),
    # lengths
    ("subject over 256", with_(orderName="数" * 257), "orderName must be at most 256 characters"),
    ("productId over 64", with_(productId="P" * 65), "productId must be at most 64 characters"),
    ("body over 128", with_(body="b" * 129), "body must be at most 128 characters"),
    # unicode edge cases
    ("lone surrogate", with_(orderName="A\ud800B"), "orderName must not contain lone surrogates"),
    ("control char", with_(orderName="A\x07B"), "orderName must not contain control characters"),
    ("newline", with_(orderName="A\nB"), "orderName must not contain control characters"),
    ("NUL", with_(userId="U\x001"), "userId must not contain control characters"),
    ("line separator", with_(orderName="A\u2028B"), "orderName must not contain control characters"),
    ("bidi override", with_(orderName="A\u202eB"), "orderName must not contain invisible format characters"),
    ("zero-width joiner", with_(orderName="A\u200dB"), "orderName must not contain invisible format characters"),
    ("emoji", with_(orderName="咖啡 \U0001F600"), "orderName must not contain emoji"),
    ("emoji with selector", with_(orderName="\u2764\ufe0f"), "orderName must not contain emoji"),
    ("leading combining mark", with_(orderName="\u0301abc"), "orderName has misplaced combining marks"),
    ("zalgo", with_(orderName="a" + "\u0301\u0302\u0303\u0304\u0305"), "orderName has misplaced combining marks"),
    ("private use", with_(orderName="A\ue000"), "orderName must not contain private-use characters"),
    ("noncharacter", with_(orderName="A\uffff"), "orderName must not contain unassigned code points"),
]


@pytest.mark.parametrize("name, payload, msg", CATALOG, ids=[c[0] for c in CATALOG])
def test_bad_input_is_400_with_a_clear_message_and_nothing_written(dynamodb, name, payload, msg):
    reply = pay(pay_event(None, raw=json.dumps(payload).encode("utf-8", "surrogatepass")))
    assert reply["statusCode"] == 400, reply
    answer = json.loads(reply["body"])
    assert answer["code"] == 400 and msg in answer["msg"] and answer["data"] is None
    assert stored_items(dynamodb) == []


RAW_BODIES = [
    ("empty", b"", "body is required"),
    ("whitespace", b"  \n ", "body is required"),
    ("not JSON", b"productId=P1", "valid UTF-8 JSON"),
    ("truncated JSON", b'{"productId": "P1"', "valid UTF-8 JSON"),
    ("invalid UTF-8", b'{"productId": "\xff"}', "valid UTF-8 JSON"),
    ("NaN literal", b'{"total_amount": NaN}', "valid UTF-8 JSON"),
    ("array", b"[1, 2]", "body must be a JSON object"),
    ("string", b'"pay me"', "body must be a JSON object"),
    ("number", b"198.01", "body must be a JSON object"),
    ("null", b"null", "body must be a JSON object"),
    ("deep nesting", b"[" * 5000 + b"]" * 5000, "valid UTF-8 JSON"),
    ("too large", b'{"body": "' + b"x" * 20_000 + b'"}', "at most 16384 bytes"),
    ("huge integer", b'{"total_amount": ' + b"9" * 5000 + b"}", "total_amount is a number this API cannot read"),
]


@pytest.mark.parametrize("name, raw, msg", RAW_BODIES, ids=[c[0] for c in RAW_BODIES])
def test_bodies_that_are_not_a_json_object_are_400(dynamodb, name, raw, msg):
    reply = pay(events.http_event("POST", "/pay", raw, {"content-type": "application/octet-stream"}))
    assert reply["statusCode"] == 400, reply
    assert msg in json.loads(reply["body"])["msg"]
    assert stored_items(dynamodb) == []


def test_accepted_unicode_is_normalised_not_refused(store):
    """Chinese, ★, Vietnamese and a decomposed é are ordinary titles; é is stored composed."""
    reply = pay(pay_event(with_(orderName="咖啡 ★ Phở cafe\u0301")))
    assert reply["statusCode"] == 200, reply
    order = store.get(json.loads(reply["body"])["data"]["outTradeNo"])
    assert order.order_name == "咖啡 ★ Phở café"


# --- fuzz --------------------------------------------------------------------------------------

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
                         st.text(max_size=300), st.decimals(allow_nan=False, allow_infinity=False).map(str))
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=12)
field_values = st.one_of(json_values, st.sampled_from(["", " ", "0.01", "1e2", "-0", "00.10", "P1", "U1"]))
bodies = st.fixed_dictionaries({}, optional={k: field_values for k in ("productId", "userId", "orderName", "total_amount", "body")})


@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=st.one_of(bodies, json_values))
def test_fuzzed_json_bodies_never_500(dynamodb, payload):
    before = len(stored_items(dynamodb))
    reply = pay(pay_event(None, raw=json.dumps(payload).encode("utf-8", "surrogatepass")))
    assert reply["statusCode"] in (200, 400), reply
    after = len(stored_items(dynamodb))
    assert after == before + (reply["statusCode"] == 200)


@settings(max_examples=200, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=2000), base64_encoded=st.booleans())
def test_fuzzed_raw_bodies_never_500(dynamodb, raw, base64_encoded):
    event = events.http_event("POST", "/pay", None, {"content-type": "application/json"})
    event["body"], event["isBase64Encoded"] = raw.decode("latin-1"), base64_encoded
    reply = pay(event)
    assert reply["statusCode"] == 400, reply
    assert stored_items(dynamodb) == []
