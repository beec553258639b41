"""Money: integer cents inside, ``Decimal`` only at the edges, two-decimal strings to Alipay.

Seed 004 stored ``parseFloat(totalAmount)``; a float cannot hold 0.1, so every amount here is
an ``int`` of cents and every parse goes through ``Decimal`` from the original text.
"""
from __future__ import annotations

import re
from decimal import Decimal, Inexact, InvalidOperation, localcontext
from typing import Union

MIN_CENTS = 1  # Alipay: [0.01, 100000000.00]
MAX_CENTS = 100_000_000_00
# The longest amount text read at all: "100000000.00" is 12 characters; 128 leaves room for spaces,
# a sign, an exponent and the trailing zeros some systems pad with. Longer is refused before any
# pattern or Decimal sees it.
MAX_AMOUNT_TEXT = 128

Yuan = Union[str, int, Decimal]


class InvalidAmount(ValueError):
    """The value is not an amount Alipay accepts. The message says why, for a 400 reply."""


def yuan_to_cents(value: object, *, field: str = "total_amount") -> int:
    """Parse a yuan amount (a JSON string or number) into whole cents.

    "1.1" and "1.000" are 110 and 100 cents; "1.001", 0, negatives, NaN, infinities, booleans,
    floats and anything above 100000000.00 are rejected. Floats are refused on purpose: callers
    parse JSON with ``parse_float=Decimal`` so a number keeps the digits the client sent.
    """
    if type(value) is str and len(value) > MAX_AMOUNT_TEXT:
        raise InvalidAmount(f"{field} must be at most {MAX_AMOUNT_TEXT} characters")
    if type(value) is str and (plain := _PLAIN_YUAN.fullmatch(value)):  # what Alipay sends: "198.01"
        return check_cents(int(plain[1]) * 100 + int(plain[2]), field=field)
    return _decimal_cents(value, field)


# Digits, a point, two digits: the cents are exact in int arithmetic, with no Decimal context to set
# up. Anything else takes the Decimal path; tests/unit/test_money.py holds the two to one result.
_PLAIN_YUAN = re.compile(r"([0-9]{1,10})\.([0-9]{2})")


# What a decimal amount may look like as text: ASCII digits only. Decimal alone would also take
# "1_000" and other scripts' digits ("١٢"), which no client means as an amount. Every character
# has one place it can match (no two quantifiers compete for the same digits), so a mismatch
# costs one pass: "[0-9]+\.?[0-9]*" let the two runs split a long number every possible way.
_DECIMAL_TEXT = re.compile(
    r"\s*+[+-]?(?:(?:[0-9]++(?:\.[0-9]*+)?|\.[0-9]++)(?:[eE][+-]?[0-9]++)?|nan|inf|infinity)\s*+",
    re.ASCII | re.IGNORECASE,
)


def _decimal_cents(value: object, field: str) -> int:
    """``yuan_to_cents`` for every form Decimal reads: exponents, signs, spaces, more decimals."""
    if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
        raise InvalidAmount(f"{field} must be a decimal string or number of yuan")
    if isinstance(value, str) and not _DECIMAL_TEXT.fullmatch(value):
        raise InvalidAmount(f"{field} is not a number: {value[:32]!r}")
    try:
        amount = Decimal(value.strip()) if isinstance(value, str) else Decimal(value)
    except ArithmeticError:  # InvalidOperation: an exponent beyond Decimal's limits
        raise InvalidAmount(f"{field} is not a number: {str(value)[:32]!r}") from None
    if not amount.is_finite():
        raise InvalidAmount(f"{field} must be a finite number")
    if amount and amount.adjusted() > 9:  # >= 1e10 yuan: out of range, and no 1e999999 * 100 overflow
        raise InvalidAmount(f"{field} must not exceed 100000000.00 yuan")
    with localcontext() as exact:
        exact.prec = 64
        exact.traps[Inexact] = True  # 28-digit rounding would turn 1.00000000000000000000000000001 into 1
        try:
            cents = amount * 100
        except Inexact:
            raise InvalidAmount(f"{field} must have at most two decimals") from None
    if cents != cents.to_integral_value():
        raise InvalidAmount(f"{field} must have at most two decimals")
    return check_cents(int(cents), field=field)


def check_cents(cents: object, *, field: str = "totalAmount") -> int:
    """Validate an integer amount of cents (what add_order receives and DynamoDB stores)."""
    if isinstance(cents, bool) or not isinstance(cents, int):
        raise InvalidAmount(f"{field} must be an integer number of cents")
    if cents < MIN_CENTS:
        raise InvalidAmount(f"{field} must be at least 0.01 yuan")
    if cents > MAX_CENTS:
        raise InvalidAmount(f"{field} must not exceed 100000000.00 yuan")
    return cents


def cents_to_yuan(cents: int) -> str:
    """Format cents the way Alipay expects amounts: ``1230`` -> ``"12.30"``."""
    if isinstance(cents, bool) or not isinstance(cents, int) or cents < 0:
        raise InvalidAmount("cents must be a non-negative integer")
    return f"{cents // 100}.{cents % 100:02d}"
