"""Issue 11 #1 below the handlers: each parser that reads outside input bounds it first and runs in
linear time, and refuses with its own error (never a ValueError, RecursionError or a traceback)."""
from __future__ import annotations

import time

import pytest

from local import alipay
from shared.alipay import gateway, notify
from shared.domain import clock, money

# CPU seconds: generous (a normal call is microseconds); before the fix the amount pattern took
# 0.3 s for 4000 digits and about 20 s for 16 KiB.
BUDGET = 0.02


def cpu(call):
    start = time.process_time()
    try:
        call()
    except (money.InvalidAmount, notify.NotifyRejected, gateway.GatewayError, ValueError):
        pass
    return time.process_time() - start


LONG = {"digits": "1" * 4000 + "x", "fraction": "1." + "1" * 4000 + "x", "exponent": "1e" + "1" * 4000 + "x",
        "spaces": " " * 4000 + "x", "digits, point, space": "1" * 4000 + ". x"}
BOUNDED = {"digits": "1" * 127 + "x", "fraction": "1." + "1" * 125 + "x", "exponent": "1e" + "1" * 125 + "x",
           "spaces": " " * 127 + "x"}


@pytest.mark.parametrize("text", LONG.values(), ids=list(LONG))
def test_the_amount_check_is_linear_and_bounded(text):
    assert cpu(lambda: money.yuan_to_cents(text)) < BUDGET
    with pytest.raises(money.InvalidAmount, match=f"at most {money.MAX_AMOUNT_TEXT} characters"):
        money.yuan_to_cents(text)


@pytest.mark.parametrize("text", BOUNDED.values(), ids=list(BOUNDED))
def test_the_amount_pattern_itself_has_no_competing_quantifiers(text):
    """Within the length bound too: one pass, however the text fails."""
    started = time.perf_counter_ns()
    for _ in range(1000):
        assert not money._DECIMAL_TEXT.fullmatch(text)
    assert (time.perf_counter_ns() - started) / 1000 < 50_000  # 50 µs a match: quadratic would be ~100x a pass


@pytest.mark.parametrize("text", ["1e9999999999999999999", "1e-9999999999999999999", "-1e9999999999999999999"])
def test_exponents_beyond_decimal_are_invalid_amounts(text):
    with pytest.raises(money.InvalidAmount, match="not a number"):
        money.yuan_to_cents(text)


def test_an_alipay_time_is_bounded_before_strptime_quotes_it():
    with pytest.raises(ValueError) as refused:
        clock.parse_alipay_time("2026-12-02 08:00:00" + "0" * 60_000)
    assert len(str(refused.value)) < 100
    with pytest.raises(ValueError):
        clock.parse_alipay_time(20261202)  # a number in an answer: a ValueError like any other bad time


@pytest.mark.parametrize("field, limit", sorted(notify.FIELD_LIMITS.items()))
def test_notify_fields_longer_than_alipay_documents_are_refused_before_verification(alipay_keys, field, limit):
    params = alipay.sign_notify(alipay.notify_params(app_id="2021000000000001", out_trade_no="O1", total_amount="1.00"),
                                alipay_keys.private_key)
    params[field] = "1" * (limit + 1)
    with pytest.raises(notify.NotifyRejected, match=f"{field} longer than {limit} characters"):
        notify.verify_notify(alipay.form_body(params, "utf-8"), public_key=alipay_keys.public_key, app_id="2021000000000001")


def test_notify_with_too_many_fields_is_refused_before_it_is_split():
    body = b"&" * (notify.MAX_BODY_BYTES - 1)
    assert cpu(lambda: notify.parse_form(body)) < BUDGET / 10
    with pytest.raises(notify.NotifyRejected, match="more than 200 fields"):
        notify.parse_form(body)


ANSWERS = {
    "a 5000-digit number": '{"code":"10000","msg":"Success","n":' + "9" * 5000 + "}",
    "deep nesting": '{"code":"10000","a":' + "[" * 100_000 + "]" * 100_000 + "}",
}


@pytest.mark.parametrize("content", ANSWERS.values(), ids=list(ANSWERS))
def test_a_gateway_answer_python_json_cannot_read_is_a_gateway_error(alipay_keys, content):
    """Before: int()'s digit limit raised ValueError and deep nesting RecursionError, past the
    GatewayError the callers catch (reconcile would stop its pass on it)."""
    body = alipay.signed_response("alipay_trade_query_response", content, alipay_keys.private_key).encode()
    assert len(body) < gateway.MAX_RESPONSE_BYTES
    with pytest.raises(gateway.GatewayError, match="malformed answer"):
        gateway.parse_response(body, "alipay.trade.query", alipay_keys.public_key)
    assert cpu(lambda: gateway.parse_response(body, "alipay.trade.query", alipay_keys.public_key)) < BUDGET
