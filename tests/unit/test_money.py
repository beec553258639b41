from decimal import Decimal

import pytest

from shared.money import InvalidAmount, cents_to_yuan, check_cents, yuan_to_cents


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
     True, False, None, 1.1, 0.1, [], {}, "100000000.01", 10**9, Decimal("sNaN"), "0.001"],
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
