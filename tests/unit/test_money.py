"""Unit tests of ledger.money: exponents, half-up rounding, largest-remainder splits, parsing."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.errors import UnknownCurrencyError, ValidationError
from ledger.money import (
    BUCKETS,
    CURRENCY_EXPONENTS,
    MAX_DECIMAL_TEXT_LENGTH,
    exponent,
    parse_decimal_minor,
    parse_hours_minutes,
    round_half_up,
    split_largest_remainder,
)

FIFTY_THIRTY_TWENTY = {"healthcare": 5000, "retirement": 3000, "training": 2000}


# --- currency exponents -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("currency", "expected"),
    [
        ("USD", 2), ("EUR", 2), ("GBP", 2), ("CAD", 2), ("AUD", 2), ("CHF", 2), ("MXN", 2),
        ("JPY", 0), ("KRW", 0),
        ("KWD", 3), ("BHD", 3), ("JOD", 3), ("OMR", 3), ("TND", 3),
    ],
)  # fmt: skip
def test_exponent_is_the_iso_4217_minor_unit(currency: str, expected: int) -> None:
    assert exponent(currency) == expected


def test_buckets_are_healthcare_retirement_training_in_tie_order() -> None:
    assert BUCKETS == ("healthcare", "retirement", "training")


def test_every_configured_exponent_is_0_2_or_3() -> None:
    assert set(CURRENCY_EXPONENTS.values()) == {0, 2, 3}


@pytest.mark.parametrize("currency", ["usd", "Usd", "XXX", "", "US", "USDD", " USD"])
def test_unknown_or_lowercase_currency_raises_unknown_currency_error(currency: str) -> None:
    with pytest.raises(UnknownCurrencyError) as raised:
        exponent(currency)
    assert list(raised.value.errors) == ["currency"]


def test_unknown_currency_error_is_a_validation_error() -> None:
    with pytest.raises(ValidationError):
        exponent("ZZZ")


# --- half-up rounding ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Fraction(5, 2), 3),
        (Fraction(-5, 2), -3),
        (Fraction(1, 2), 1),
        (Fraction(-1, 2), -1),
        (Fraction(7, 2), 4),
        (Fraction(249, 100), 2),
        (Fraction(251, 100), 3),
        (Fraction(-249, 100), -2),
        (Fraction(-251, 100), -3),
        (Fraction(-1, 3), 0),
        (Fraction(493824, 100), 4938),
        (Fraction(3996, 100), 40),
        (Fraction(2469, 2), 1235),
        (0, 0),
        (7, 7),
        (-7, -7),
    ],
)
def test_round_half_up_rounds_halves_away_from_zero(value: Fraction | int, expected: int) -> None:
    assert round_half_up(value) == expected


def test_round_half_up_returns_a_plain_int() -> None:
    assert type(round_half_up(Fraction(5, 2))) is int


@pytest.mark.parametrize("value", [Decimal("2.5"), True, "2.5"])
def test_round_half_up_refuses_anything_but_int_or_fraction(value: object) -> None:
    with pytest.raises(TypeError):
        round_half_up(value)  # type: ignore[arg-type]


@given(st.fractions())
def test_round_half_up_is_nearest_with_halves_away_from_zero(value: Fraction) -> None:
    rounded = round_half_up(value)
    distance = abs(value - rounded)
    assert distance <= Fraction(1, 2)
    if distance == Fraction(1, 2):
        assert abs(rounded) > abs(value)


# --- largest-remainder split --------------------------------------------------------------


def test_4938_split_50_30_20_is_2469_1481_988() -> None:
    assert split_largest_remainder(4938, FIFTY_THIRTY_TWENTY) == {
        "healthcare": 2469,
        "retirement": 1481,
        "training": 988,
    }


def test_100_split_in_thirds_is_34_33_33() -> None:
    weights = {"healthcare": 1, "retirement": 1, "training": 1}
    assert split_largest_remainder(100, weights) == {
        "healthcare": 34,
        "retirement": 33,
        "training": 33,
    }


def test_equal_remainders_go_in_bucket_order() -> None:
    weights = {"healthcare": 1, "retirement": 1, "training": 1}
    assert split_largest_remainder(2, weights) == {
        "healthcare": 1,
        "retirement": 1,
        "training": 0,
    }


def test_ties_follow_a_custom_order() -> None:
    weights = {"healthcare": 1, "retirement": 1, "training": 1}
    order = ("training", "healthcare", "retirement")
    assert split_largest_remainder(1, weights, order) == {
        "training": 1,
        "healthcare": 0,
        "retirement": 0,
    }


def test_largest_remainder_beats_bucket_order() -> None:
    # 13 by 50/30/20: 6.5 / 3.9 / 2.6 -> the leftover 2 go to retirement and training.
    assert split_largest_remainder(13, FIFTY_THIRTY_TWENTY) == {
        "healthcare": 6,
        "retirement": 4,
        "training": 3,
    }


def test_missing_weight_counts_as_zero_and_its_key_is_present() -> None:
    assert split_largest_remainder(101, {"healthcare": 1, "training": 1}) == {
        "healthcare": 51,
        "retirement": 0,
        "training": 50,
    }


def test_zero_weight_gets_zero_even_with_leftover_units() -> None:
    weights = {"healthcare": 1, "retirement": 0, "training": 2}
    assert split_largest_remainder(1, weights) == {
        "healthcare": 0,
        "retirement": 0,
        "training": 1,
    }


def test_zero_amount_splits_into_zeros() -> None:
    assert split_largest_remainder(0, FIFTY_THIRTY_TWENTY) == {
        "healthcare": 0,
        "retirement": 0,
        "training": 0,
    }


def test_result_keys_follow_the_order() -> None:
    order = ("training", "retirement", "healthcare")
    assert list(split_largest_remainder(10, FIFTY_THIRTY_TWENTY, order)) == list(order)


@pytest.mark.parametrize(
    ("amount", "weights", "order"),
    [
        (-1, FIFTY_THIRTY_TWENTY, BUCKETS),
        (10, {"healthcare": 0, "retirement": 0, "training": 0}, BUCKETS),
        (10, {}, BUCKETS),
        (10, {"healthcare": -1, "retirement": 2}, BUCKETS),
        (10, {"healthcare": 1, "savings": 1}, BUCKETS),
        (10, {"healthcare": 1}, ("healthcare", "healthcare")),
        (10, {"healthcare": True}, BUCKETS),
        (True, {"healthcare": 1}, BUCKETS),
    ],
)
def test_split_rejects_bad_inputs_with_validation_error(
    amount: int, weights: dict[str, int], order: tuple[str, ...]
) -> None:
    with pytest.raises(ValidationError):
        split_largest_remainder(amount, weights, order)


weights_strategy = st.fixed_dictionaries(
    {name: st.integers(min_value=0, max_value=10_000) for name in BUCKETS}
).filter(lambda weights: sum(weights.values()) > 0)
amounts = st.integers(min_value=0, max_value=10**15)


@given(amounts, weights_strategy)
def test_split_parts_always_sum_to_the_whole(amount: int, weights: dict[str, int]) -> None:
    assert sum(split_largest_remainder(amount, weights).values()) == amount


@given(amounts, weights_strategy)
def test_split_gives_a_zero_weight_zero(amount: int, weights: dict[str, int]) -> None:
    parts = split_largest_remainder(amount, weights)
    assert all(parts[name] == 0 for name in BUCKETS if weights[name] == 0)


@given(amounts, weights_strategy)
def test_split_parts_are_within_1_of_the_exact_share(amount: int, weights: dict[str, int]) -> None:
    parts = split_largest_remainder(amount, weights)
    total = sum(weights.values())
    for name in BUCKETS:
        assert abs(parts[name] - Fraction(amount * weights[name], total)) < 1


# --- parsing decimal amounts --------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "currency_exponent", "expected"),
    [
        ("1234.56", 2, 123456),
        ("12", 2, 1200),
        ("0.5", 2, 50),
        ("0.05", 2, 5),
        ("0", 2, 0),
        ("007.50", 2, 750),
        ("1500", 0, 1500),
        ("1.234", 3, 1234),
        ("1.2", 3, 1200),
        ("92233720368547758.07", 2, 9223372036854775807),
    ],
)
def test_parse_decimal_minor_is_exact(text: str, currency_exponent: int, expected: int) -> None:
    assert parse_decimal_minor(text, currency_exponent) == expected


@pytest.mark.parametrize(
    "text",
    ["", ".5", "5.", "-1", "+1", "1e3", " 1", "1 ", "1,000", "1_000", "1.2.3", "\uff11",
     "1\n", "NaN", "Infinity", "0x10", "1" * (MAX_DECIMAL_TEXT_LENGTH + 1)],
)  # fmt: skip
def test_parse_decimal_minor_rejects_anything_but_plain_decimals(text: str) -> None:
    with pytest.raises(ValidationError, match="decimal"):
        parse_decimal_minor(text, 2)


def test_parse_decimal_minor_refuses_more_decimals_than_the_currency_allows() -> None:
    with pytest.raises(ValidationError, match="has 3 decimal places; the currency allows 2"):
        parse_decimal_minor("1.234", 2)


def test_parse_decimal_minor_refuses_any_decimals_for_yen() -> None:
    with pytest.raises(ValidationError, match="allows 0 decimal place"):
        parse_decimal_minor("1.5", 0)


@pytest.mark.parametrize(("text", "currency_exponent"), [("1.230", 2), ("1.0", 0), ("5.00", 0)])
def test_parse_decimal_minor_refuses_trailing_zeros_beyond_the_exponent(
    text: str, currency_exponent: int
) -> None:
    with pytest.raises(ValidationError, match="trailing zeros"):
        parse_decimal_minor(text, currency_exponent)


def test_parse_decimal_minor_refuses_a_negative_exponent() -> None:
    with pytest.raises(ValidationError, match="exponent"):
        parse_decimal_minor("1", -1)


@given(st.integers(min_value=0, max_value=10**18), st.sampled_from([0, 2, 3]))
def test_parse_decimal_minor_reads_back_a_formatted_amount(minor: int, places: int) -> None:
    whole, fraction = divmod(minor, 10**places)
    text = f"{whole}.{fraction:0{places}d}" if places else str(whole)
    assert parse_decimal_minor(text, places) == minor


# --- parsing hours ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [("37.5", 2250), ("0.25", 15), ("2", 120), ("1.50", 90), ("0.05", 3), ("0", 0),
     ("255", 15300), ("19.6", 1176)],
)  # fmt: skip
def test_parse_hours_minutes_is_exact(text: str, expected: int) -> None:
    assert parse_hours_minutes(text) == expected


@pytest.mark.parametrize("text", ["1.01", "0.001", "1.005", "0.1234"])
def test_parse_hours_minutes_refuses_fractions_of_a_minute(text: str) -> None:
    with pytest.raises(ValidationError, match="not a whole number of minutes"):
        parse_hours_minutes(text)


@pytest.mark.parametrize("text", ["", "-1", "1.", ".5", "1e2", "1,5", " 2", "2h"])
def test_parse_hours_minutes_rejects_anything_but_plain_decimals(text: str) -> None:
    with pytest.raises(ValidationError, match="decimal"):
        parse_hours_minutes(text)


@given(st.integers(min_value=0, max_value=10**9))
def test_parse_hours_minutes_reads_back_every_twentieth_of_an_hour(twentieths: int) -> None:
    hundredths = 5 * twentieths  # 0.05 h = 3 minutes, the smallest decimal step of whole minutes
    text = f"{hundredths // 100}.{hundredths % 100:02d}"
    assert parse_hours_minutes(text) == 3 * twentieths
