"""Money: currency exponents, half-up rounding, largest-remainder splits, exact parsing.

Every amount is an ``int`` in the minor units of its currency (cents for USD). Intermediate
values are exact ``fractions.Fraction``; nothing here ever goes through ``float``.
Source of every rule: DOMAIN.md "Money" (ledger-wide, applies to every program).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from fractions import Fraction

from ledger.errors import UnknownCurrencyError, ValidationError

BUCKETS: tuple[str, str, str] = ("healthcare", "retirement", "training")
"""The three buckets of a member account, in the fixed order that breaks split ties."""

CURRENCY_EXPONENTS: dict[str, int] = {
    # ISO 4217 minor-unit exponents of the currencies the ledger supports.
    "AUD": 2, "BRL": 2, "CAD": 2, "CHF": 2, "CNY": 2, "CZK": 2, "DKK": 2, "EUR": 2,
    "GBP": 2, "HKD": 2, "INR": 2, "MXN": 2, "NOK": 2, "NZD": 2, "PLN": 2, "SEK": 2,
    "SGD": 2, "USD": 2, "ZAR": 2,
    "CLP": 0, "ISK": 0, "JPY": 0, "KRW": 0, "PYG": 0, "UGX": 0, "VND": 0, "XAF": 0,
    "XOF": 0,
    "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
}  # fmt: skip
"""ISO 4217 code (upper case) -> number of decimal places of its minor unit."""

MAX_DECIMAL_TEXT_LENGTH = 40
"""Longest decimal text the parsers accept (far beyond any BIGINT amount; bounds ``int()``)."""

_DECIMAL_TEXT = re.compile(r"[0-9]+(?:\.[0-9]+)?")


def exponent(currency: str) -> int:
    """Return the ISO 4217 minor-unit exponent of ``currency`` (``"USD"`` -> 2, ``"JPY"`` -> 0).

    Codes are matched exactly: ``"usd"`` is unknown.
    Raises ``UnknownCurrencyError`` (errors ``{"currency": [...]}``) for a code not in
    ``CURRENCY_EXPONENTS``. Source: DOMAIN.md "Money" (ISO 4217).
    """
    if currency not in CURRENCY_EXPONENTS:
        message = f"unknown currency {currency!r}: expected an upper-case ISO 4217 code"
        raise UnknownCurrencyError(message, errors={"currency": [message]})
    return CURRENCY_EXPONENTS[currency]


def round_half_up(value: Fraction | int) -> int:
    """Round an exact rational to the nearest integer, halves away from zero.

    ``Fraction(5, 2)`` -> 3, ``Fraction(-5, 2)`` -> -3, ``Fraction(2469, 2)`` -> 1235.
    Takes minor units (as a ``Fraction`` or ``int``), returns minor units (``int``).
    Raises ``TypeError`` for anything else (a ``float`` or ``Decimal`` is a bug).
    Source: DOMAIN.md "Money" (half-up, once, on the period's aggregate).
    """
    if isinstance(value, bool) or not isinstance(value, (int, Fraction)):
        raise TypeError(f"round_half_up takes an int or Fraction, not {type(value).__name__}")
    exact = Fraction(value)
    magnitude = (2 * abs(exact.numerator) + exact.denominator) // (2 * exact.denominator)
    return magnitude if exact >= 0 else -magnitude


def split_largest_remainder(
    amount: int, weights: Mapping[str, int], order: Sequence[str] = BUCKETS
) -> dict[str, int]:
    """Split ``amount`` minor units by integer ``weights`` with the largest remainder method.

    ``amount``: int >= 0. ``weights``: name -> int >= 0 (e.g. basis points); a name of
    ``order`` missing from ``weights`` weighs 0; the weights of ``order`` must sum to > 0.
    Each part is floor(amount * w / sum); the leftover units go one at a time to the largest
    fractional remainders, ties to the name earlier in ``order``. Returns a dict with exactly
    the names of ``order`` (in that order); the parts sum to ``amount``, a zero weight gets 0,
    and each part is within 1 of its exact share.
    Example: 4938 by 5000/3000/2000 -> 2469 / 1481 / 988; 100 by 1/1/1 -> 34 / 33 / 33.
    Raises ``ValidationError`` for a negative amount or weight, a non-int, a weight named
    outside ``order``, a repeated name in ``order`` or weights summing to 0.
    Source: DOMAIN.md "Money" (largest remainder; ties healthcare, retirement, training).
    """
    _check_split_inputs(amount, weights, order)
    total = sum(weights.get(name, 0) for name in order)
    parts = {name: amount * weights.get(name, 0) // total for name in order}
    remainders = {name: amount * weights.get(name, 0) % total for name in order}
    leftover = amount - sum(parts.values())
    position = {name: index for index, name in enumerate(order)}
    ranked = sorted(order, key=lambda name: (-remainders[name], position[name]))
    for name in ranked[:leftover]:
        parts[name] += 1
    return parts


def _check_split_inputs(amount: int, weights: Mapping[str, int], order: Sequence[str]) -> None:
    """Raise ``ValidationError`` unless the inputs of a split are as documented above."""
    if not _is_non_negative_int(amount):
        raise ValidationError(f"amount to split must be an int >= 0, got {amount!r}")
    if len(set(order)) != len(order):
        raise ValidationError(f"split order repeats a name: {list(order)!r}")
    strays = sorted(set(weights) - set(order))
    if strays:
        raise ValidationError(f"weights name parts outside the split order: {strays!r}")
    bad = sorted(name for name, weight in weights.items() if not _is_non_negative_int(weight))
    if bad:
        raise ValidationError(f"weights must be ints >= 0, not for: {bad!r}")
    if sum(weights.values()) <= 0:
        raise ValidationError("weights must sum to more than 0")


def parse_decimal_minor(text: str, currency_exponent: int) -> int:
    r"""Parse a plain decimal amount exactly into minor units.

    ``("1234.56", 2)`` -> 123456, ``("12", 2)`` -> 1200, ``("0.5", 2)`` -> 50,
    ``("7", 0)`` -> 7. ``text`` must match ``[0-9]+(\.[0-9]+)?`` in full: no sign,
    exponent, spaces, underscores or thousands separators, at most
    ``MAX_DECIMAL_TEXT_LENGTH`` characters. Strict about decimals: more decimal places than
    ``currency_exponent`` is an error even when the extra digits are zeros (``"1.230"`` for
    USD, ``"1.0"`` for JPY), so a value never silently loses or pads precision.
    Raises ``ValidationError`` naming the problem (its ``errors`` is empty: the caller knows
    the field). Source: DOMAIN.md "Money" (integers in minor units, exact, never a float).
    """
    whole, fraction = _split_decimal_text(text)
    if not _is_non_negative_int(currency_exponent):
        raise ValidationError(f"currency exponent must be an int >= 0, got {currency_exponent!r}")
    if len(fraction) > currency_exponent:
        raise ValidationError(_too_many_decimals(text, fraction, currency_exponent))
    return int(whole + fraction.ljust(currency_exponent, "0"))


def _too_many_decimals(text: str, fraction: str, currency_exponent: int) -> str:
    """Say why ``text`` has more decimal places than the currency allows."""
    allowed = f"the currency allows {currency_exponent} decimal place(s)"
    if fraction[currency_exponent:].strip("0") == "":
        return f"amount {text!r} has trailing zeros beyond what {allowed}; remove them"
    return f"amount {text!r} has {len(fraction)} decimal places; {allowed}"


def parse_hours_minutes(text: str) -> int:
    """Parse decimal hours exactly into whole minutes.

    ``"37.5"`` -> 2250, ``"0.25"`` -> 15, ``"2"`` -> 120, ``"0.05"`` -> 3. Same text format
    as ``parse_decimal_minor`` (trailing zeros are fine here: ``"1.50"`` -> 90).
    Raises ``ValidationError`` for malformed text or hours that are not a whole number of
    minutes (``"1.01"`` is 60.6 minutes). Source: DOMAIN.md "Contributions" (engaged
    minutes; Massachusetts Uber/Lyft settlement 2025 hour tiers).
    """
    whole, fraction = _split_decimal_text(text)
    minutes = Fraction(f"{whole}.{fraction or '0'}") * 60
    if minutes.denominator != 1:
        raise ValidationError(f"hours {text!r} are not a whole number of minutes")
    return minutes.numerator


def _split_decimal_text(text: str) -> tuple[str, str]:
    """Check the decimal format and return (whole digits, fraction digits, maybe empty)."""
    if not isinstance(text, str) or len(text) > MAX_DECIMAL_TEXT_LENGTH:
        raise ValidationError(f"expected decimal text of at most {MAX_DECIMAL_TEXT_LENGTH} chars")
    if _DECIMAL_TEXT.fullmatch(text) is None:
        raise ValidationError(
            f"{text!r} is not a plain decimal like 1234.56 (digits, optional '.' and digits; "
            "no sign, exponent, spaces or separators)"
        )
    whole, _, fraction = text.partition(".")
    return whole, fraction


def _is_non_negative_int(value: object) -> bool:
    """Tell whether ``value`` is an ``int`` (not ``bool``) >= 0."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
