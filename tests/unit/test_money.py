from decimal import Decimal

import pytest
from hypothesis import example, given, settings, strategies as st

from shared.domain.money import InvalidAmount, _decimal_cents, cents_to_yuan, check_cents, yuan_to_cents


@pytest.mark.parametrize(
    "value, cents",
    [("1.1", 110), ("1.000", 100), ("0.01", 1), ("198.01", 19801), (" 12.30 ", 1230), (7, 700),
     (Decimal("198.01"), 19801), ("100000000.00", 10_000_000_000), ("1e2", 10_000), ("0.10", 10)],
)
def test_yuan_to_cents_is_exact(value, cents):
    assert yuan_to_cents(value) == cents


@pytest.mark.parametrize(
    "value",
    ["1.001", "0", "0.00", "-1", "-0.01", "NaN", "nan", "Infinity", "-inf", "", "abc", "1,00", "¥1",
     True, False, None, 1.1, 0.1, [], {}, "100000000.01", 10**9, Decimal("sNaN"), "0.001",
     "1_0", "1_000.00", "١٢.٣٤", "１２.３４", "0x10", "1e", "."],
)
def test_yuan_to_cents_rejects(value):
    with pytest.raises(InvalidAmount):
        yuan_to_cents(value)


def test_floats_are_refused_even_when_exact():
    with pytest.raises(InvalidAmount, match="decimal string or number"):
        yuan_to_cents(2.5)


@pytest.mark.parametrize("value", [0, -1, True, 1.0, "100", 10_000_000_001])
def test_check_cents_rejects(value):
    with pytest.raises(InvalidAmount):
        check_cents(value)


@pytest.mark.parametrize("cents, text", [(1230, "12.30"), (1, "0.01"), (100, "1.00"), (10_000_000_000, "100000000.00")])
def test_cents_to_yuan(cents, text):
    assert cents_to_yuan(cents) == text
    assert yuan_to_cents(text) == cents


def _outcome(parse, value):
    try:
        return parse(value)
    except InvalidAmount as exc:
        return str(exc)


_AMOUNTS = st.one_of(
    st.from_regex(r"\A[0-9]{1,12}\.[0-9]{2}\Z"),
    st.from_regex(r"\A[ 0+-]?[0-9]{0,11}\.?[0-9]{0,4}(e[0-9])?\s?\Z"),
    st.text(alphabet="0123456789.١٢ e+-", max_size=14),
)


@settings(max_examples=300)
@given(_AMOUNTS)
@example("198.01")
@example("0.00")
@example("9999999999.99")
@example("0000000000.01")
@example("١٢.٣٤")
@example("12.34\n")
def test_the_plain_fast_path_equals_the_decimal_path(text):
    assert _outcome(yuan_to_cents, text) == _outcome(lambda v: _decimal_cents(v, "total_amount"), text)
