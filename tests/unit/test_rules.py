"""Unit tests of ledger.rules: plan periods, eligibility, period amounts, caps, validation."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import date
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.errors import InvariantError, ValidationError
from ledger.rules import (
    PeriodTotals,
    PlanTerms,
    Proration,
    Tier,
    amount_to_post,
    basis_earnings_minor,
    exact_period_amount,
    is_eligible,
    period_starts_before,
    period_target_minor,
    plan_period_bounds,
    reaches_threshold,
    validate_plan_terms,
)

FOUR_PERCENT = PlanTerms(basis="percent_of_earnings", rate_bps=400)
MASSACHUSETTS_TIERS = Proration(
    method="tiers", tiers=(Tier(min_minutes=11_700, percent_bps=5000), Tier(19_500, 10_000))
)


def post_in_order(
    terms: PlanTerms, reports: Sequence[PeriodTotals], earlier_reached: Sequence[bool] = ()
) -> list[int]:
    """Post each report the way the ledger does; return the amount each one posts."""
    totals, posted, amounts = PeriodTotals(), 0, []
    for report in reports:
        totals = totals.plus(report)
        eligible = is_eligible(terms, totals, earlier_reached)
        amount = amount_to_post(period_target_minor(terms, totals, eligible, 0), posted)
        posted += amount
        amounts.append(amount)
    return amounts


def aggregate(reports: Sequence[PeriodTotals]) -> PeriodTotals:
    """Return the field-wise sum of ``reports``."""
    totals = PeriodTotals()
    for report in reports:
        totals = totals.plus(report)
    return totals


# --- value types --------------------------------------------------------------------------


def test_plan_terms_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        FOUR_PERCENT.rate_bps = 500  # type: ignore[misc]


def test_plan_terms_defaults_are_monthly_pre_tip_without_threshold_or_cap() -> None:
    terms = PlanTerms(basis="per_job", amount_minor=500)
    assert (terms.period, terms.earnings_basis, terms.min_earnings_minor) == ("month", "pre_tip", 0)
    assert (terms.eligibility_persists_periods, terms.annual_cap_minor, terms.proration) == (
        0,
        None,
        None,
    )


def test_period_totals_plus_adds_field_by_field() -> None:
    total = PeriodTotals(1000, 100, 60, 2).plus(PeriodTotals(500, 50, 30, 1))
    assert total == PeriodTotals(1500, 150, 90, 3)


def test_period_totals_minus_takes_a_report_back_out() -> None:
    assert PeriodTotals(1500, 150, 90, 3).minus(PeriodTotals(500, 50, 30, 1)) == PeriodTotals(
        1000, 100, 60, 2
    )


def test_period_totals_minus_of_a_report_not_in_the_aggregate_is_an_invariant_error() -> None:
    with pytest.raises(InvariantError):
        PeriodTotals(100).minus(PeriodTotals(200))


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ((-1, 0, 0, 0), "gross_earnings_minor"),
        ((0, -1, 0, 0), "tips_minor"),
        ((0, 0, -1, 0), "engaged_minutes"),
        ((0, 0, 0, -1), "jobs"),
        ((True, 0, 0, 0), "gross_earnings_minor"),
        ((100, 101, 0, 0), "tips_minor"),
    ],
)
def test_period_totals_refuse_negative_fields_and_tips_above_gross(
    values: tuple[int, int, int, int], field: str
) -> None:
    with pytest.raises(ValidationError) as raised:
        PeriodTotals(*values)
    assert list(raised.value.errors) == [field]


# --- plan periods -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("period", "day", "expected"),
    [
        ("month", date(2024, 2, 10), (date(2024, 2, 1), date(2024, 2, 29))),
        ("month", date(2025, 2, 28), (date(2025, 2, 1), date(2025, 2, 28))),
        ("month", date(2100, 2, 1), (date(2100, 2, 1), date(2100, 2, 28))),
        ("month", date(2000, 2, 1), (date(2000, 2, 1), date(2000, 2, 29))),
        ("month", date(2025, 12, 31), (date(2025, 12, 1), date(2025, 12, 31))),
        ("month", date(2025, 4, 30), (date(2025, 4, 1), date(2025, 4, 30))),
        ("quarter", date(2025, 2, 14), (date(2025, 1, 1), date(2025, 3, 31))),
        ("quarter", date(2024, 2, 29), (date(2024, 1, 1), date(2024, 3, 31))),
        ("quarter", date(2025, 4, 1), (date(2025, 4, 1), date(2025, 6, 30))),
        ("quarter", date(2025, 8, 31), (date(2025, 7, 1), date(2025, 9, 30))),
        ("quarter", date(2025, 11, 5), (date(2025, 10, 1), date(2025, 12, 31))),
        ("quarter", date(2025, 12, 31), (date(2025, 10, 1), date(2025, 12, 31))),
        ("quarter", date(2026, 1, 1), (date(2026, 1, 1), date(2026, 3, 31))),
    ],
)
def test_plan_period_bounds_are_the_calendar_month_or_quarter(
    period: str, day: date, expected: tuple[date, date]
) -> None:
    assert plan_period_bounds(period, day) == expected


def test_plan_period_bounds_refuse_an_unknown_period() -> None:
    with pytest.raises(ValidationError, match="unknown plan period 'week'"):
        plan_period_bounds("week", date(2025, 1, 1))


def test_three_quarters_before_q1_2026_cross_into_2025() -> None:
    assert period_starts_before("quarter", date(2026, 1, 1), 3) == [
        date(2025, 10, 1),
        date(2025, 7, 1),
        date(2025, 4, 1),
    ]


def test_five_quarters_before_q2_2024_reach_q1_2023() -> None:
    assert period_starts_before("quarter", date(2024, 4, 1), 5)[-1] == date(2023, 1, 1)


def test_three_months_before_february_2026_cross_into_2025() -> None:
    assert period_starts_before("month", date(2026, 2, 1), 3) == [
        date(2026, 1, 1),
        date(2025, 12, 1),
        date(2025, 11, 1),
    ]


def test_zero_periods_before_is_empty() -> None:
    assert period_starts_before("quarter", date(2026, 4, 1), 0) == []


@pytest.mark.parametrize(
    ("period", "start", "count"),
    [
        ("quarter", date(2026, 2, 1), 1),
        ("month", date(2026, 2, 2), 1),
        ("month", date(2026, 2, 1), -1),
        ("year", date(2026, 1, 1), 1),
    ],
)
def test_period_starts_before_refuses_bad_arguments(period: str, start: date, count: int) -> None:
    with pytest.raises(ValidationError):
        period_starts_before(period, start, count)


# --- basis earnings, threshold, eligibility -----------------------------------------------


def test_pre_tip_basis_is_gross_minus_tips() -> None:
    assert basis_earnings_minor(FOUR_PERCENT, PeriodTotals(105_000, 10_000)) == 95_000


def test_gross_basis_keeps_the_tips() -> None:
    terms = dataclasses.replace(FOUR_PERCENT, earnings_basis="gross")
    assert basis_earnings_minor(terms, PeriodTotals(105_000, 10_000)) == 105_000


def test_unknown_earnings_basis_raises() -> None:
    terms = dataclasses.replace(FOUR_PERCENT, earnings_basis="net")
    with pytest.raises(ValidationError, match="unknown earnings basis 'net'"):
        basis_earnings_minor(terms, PeriodTotals())


@pytest.mark.parametrize(
    ("gross", "tips", "expected"),
    [(75_000, 0, True), (74_999, 0, False), (80_000, 5_000, True), (80_000, 5_001, False)],
)
def test_threshold_is_reached_at_exactly_the_minimum(gross: int, tips: int, expected: bool) -> None:
    terms = dataclasses.replace(FOUR_PERCENT, min_earnings_minor=75_000)
    assert reaches_threshold(terms, PeriodTotals(gross, tips)) is expected


def test_no_threshold_is_reached_by_an_empty_period() -> None:
    assert reaches_threshold(FOUR_PERCENT, PeriodTotals()) is True


PERSISTS_3 = dataclasses.replace(
    FOUR_PERCENT, period="quarter", min_earnings_minor=75_000, eligibility_persists_periods=3
)


@pytest.mark.parametrize(
    ("earlier_reached", "expected"),
    [
        ((), False),
        ((True,), True),
        ((False, False, True), True),
        ((False, False, False, True), False),
        ((False, False, False), False),
    ],
)
def test_eligibility_persists_only_for_the_configured_window(
    earlier_reached: tuple[bool, ...], expected: bool
) -> None:
    assert is_eligible(PERSISTS_3, PeriodTotals(10_000), earlier_reached) is expected


def test_a_period_reaching_the_threshold_is_eligible_without_history() -> None:
    assert is_eligible(PERSISTS_3, PeriodTotals(75_000), ()) is True


def test_without_persistence_earlier_periods_do_not_count() -> None:
    terms = dataclasses.replace(PERSISTS_3, eligibility_persists_periods=0)
    assert is_eligible(terms, PeriodTotals(10_000), (True, True)) is False


# --- exact period amount ------------------------------------------------------------------


def test_percent_of_earnings_is_rate_times_pre_tip_earnings() -> None:
    assert exact_period_amount(FOUR_PERCENT, PeriodTotals(123_456, 1_000)) == Fraction(
        400 * 122_456, 10_000
    )


def test_per_hour_is_prorated_by_the_minute() -> None:
    terms = PlanTerms(basis="per_hour", amount_minor=1_500)
    assert exact_period_amount(terms, PeriodTotals(engaged_minutes=91)) == Fraction(136_500, 60)


def test_per_job_is_amount_times_jobs() -> None:
    terms = PlanTerms(basis="per_job", amount_minor=500)
    assert exact_period_amount(terms, PeriodTotals(jobs=7)) == 3_500


def test_flat_per_period_without_proration_is_the_whole_amount() -> None:
    terms = PlanTerms(basis="flat_per_period", amount_minor=107_400)
    assert exact_period_amount(terms, PeriodTotals()) == 107_400


@pytest.mark.parametrize(
    ("minutes", "expected"),
    [(0, 0), (4_800, Fraction(100_000, 2)), (9_600, 100_000), (20_000, 100_000)],
)
def test_linear_proration_is_minutes_over_full_time_capped_at_1(
    minutes: int, expected: Fraction
) -> None:
    terms = PlanTerms(
        basis="flat_per_period",
        amount_minor=100_000,
        proration=Proration(method="linear", full_time_minutes=9_600),
    )
    assert exact_period_amount(terms, PeriodTotals(engaged_minutes=minutes)) == expected


@pytest.mark.parametrize(
    ("minutes", "expected"),
    [(0, 0), (11_699, 0), (11_700, 53_700), (19_499, 53_700), (19_500, 107_400), (99_999, 107_400)],
)
def test_tiers_pay_the_highest_tier_reached_and_nothing_below_the_lowest(
    minutes: int, expected: int
) -> None:
    terms = PlanTerms(
        basis="flat_per_period",
        period="quarter",
        amount_minor=107_400,
        proration=MASSACHUSETTS_TIERS,
    )
    assert exact_period_amount(terms, PeriodTotals(engaged_minutes=minutes)) == expected


def test_tiers_listed_out_of_order_still_pay_the_highest_reached() -> None:
    tiers = Proration(method="tiers", tiers=(Tier(19_500, 10_000), Tier(11_700, 5_000)))
    terms = PlanTerms(basis="flat_per_period", amount_minor=107_400, proration=tiers)
    assert exact_period_amount(terms, PeriodTotals(engaged_minutes=15_300)) == 53_700


@pytest.mark.parametrize(
    ("terms", "message"),
    [
        (PlanTerms(basis="percent_of_earnings"), "rate_bps is required"),
        (PlanTerms(basis="per_hour"), "amount_minor is required"),
        (PlanTerms(basis="per_week", amount_minor=1), "unknown plan basis 'per_week'"),
        (
            PlanTerms(basis="flat_per_period", amount_minor=1, proration=Proration("linear")),
            "full_time_minutes is required",
        ),
        (
            PlanTerms(basis="flat_per_period", amount_minor=1, proration=Proration("steps")),
            "unknown proration method 'steps'",
        ),
    ],
)
def test_exact_period_amount_refuses_incomplete_terms(terms: PlanTerms, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        exact_period_amount(terms, PeriodTotals(engaged_minutes=60))


# --- period target and amount to post -----------------------------------------------------

TEN_CENTS_AN_HOUR = PlanTerms(basis="per_hour", amount_minor=10)


@pytest.mark.parametrize(("minutes", "expected"), [(2, 0), (3, 1), (9, 2), (15, 3)])
def test_period_target_rounds_half_up_once(minutes: int, expected: int) -> None:
    # 10 cents x 3 / 60 = 0.5 -> 1; x 9 / 60 = 1.5 -> 2; x 2 / 60 = 0.33 -> 0
    totals = PeriodTotals(engaged_minutes=minutes)
    assert period_target_minor(TEN_CENTS_AN_HOUR, totals, True, 0) == expected


def test_period_target_is_zero_when_not_eligible() -> None:
    assert period_target_minor(FOUR_PERCENT, PeriodTotals(100_000), False, 0) == 0


def test_period_target_without_cap_ignores_other_periods() -> None:
    assert period_target_minor(FOUR_PERCENT, PeriodTotals(100_000), True, 10**9) == 4_000


@pytest.mark.parametrize(
    ("owed_other", "expected"),
    [(0, 4_000), (496_000, 4_000), (497_000, 3_000), (500_000, 0), (600_000, 0)],
)
def test_period_target_is_capped_by_what_the_year_has_left(owed_other: int, expected: int) -> None:
    terms = dataclasses.replace(FOUR_PERCENT, annual_cap_minor=500_000)
    assert period_target_minor(terms, PeriodTotals(100_000), True, owed_other) == expected


def test_period_target_refuses_negative_other_periods() -> None:
    with pytest.raises(ValidationError):
        period_target_minor(FOUR_PERCENT, PeriodTotals(100_000), True, -1)


def test_amount_to_post_is_the_difference_from_what_was_posted() -> None:
    assert amount_to_post(4_400, 0) == 4_400
    assert amount_to_post(40, 27) == 13


def test_amount_to_post_is_zero_when_nothing_changed() -> None:
    assert amount_to_post(4_400, 4_400) == 0


def test_amount_to_post_refuses_a_downward_change() -> None:
    with pytest.raises(InvariantError, match="reversal"):
        amount_to_post(39, 40)


# --- plan validation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "terms",
    [
        FOUR_PERCENT,
        PERSISTS_3,
        PlanTerms(basis="per_hour", amount_minor=1_500, earnings_basis="gross"),
        PlanTerms(basis="per_job", amount_minor=500, annual_cap_minor=500_000),
        PlanTerms(basis="flat_per_period", amount_minor=107_400, proration=MASSACHUSETTS_TIERS),
        PlanTerms(
            basis="flat_per_period",
            amount_minor=100_000,
            proration=Proration(method="linear", full_time_minutes=9_600),
        ),
    ],
)
def test_consistent_plan_terms_pass_validation(terms: PlanTerms) -> None:
    assert validate_plan_terms(terms) is None  # type: ignore[func-returns-value]


def linear(full_time_minutes: int | None, tiers: tuple[Tier, ...] = ()) -> PlanTerms:
    """Return a flat plan with a linear proration (possibly inconsistent)."""
    proration = Proration("linear", full_time_minutes=full_time_minutes, tiers=tiers)
    return PlanTerms(basis="flat_per_period", amount_minor=100, proration=proration)


def tiered(*tiers: Tier, full_time_minutes: int | None = None) -> PlanTerms:
    """Return a flat plan with a tiers proration (possibly inconsistent)."""
    proration = Proration("tiers", full_time_minutes=full_time_minutes, tiers=tiers)
    return PlanTerms(basis="flat_per_period", amount_minor=100, proration=proration)


@pytest.mark.parametrize(
    ("terms", "errors"),
    [
        (
            PlanTerms(basis="percent_of_earnings"),
            {"rate_bps": ["required for a percent_of_earnings plan"]},
        ),
        (
            PlanTerms(basis="percent_of_earnings", rate_bps=400, amount_minor=5),
            {"amount_minor": ["a percent_of_earnings plan has a rate, not an amount"]},
        ),
        (PlanTerms(basis="per_hour"), {"amount_minor": ["required for a per_hour plan"]}),
        (PlanTerms(basis="per_job"), {"amount_minor": ["required for a per_job plan"]}),
        (
            PlanTerms(basis="flat_per_period"),
            {"amount_minor": ["required for a flat_per_period plan"]},
        ),
        (
            PlanTerms(basis="per_job", amount_minor=5, rate_bps=400),
            {"rate_bps": ["only a percent_of_earnings plan has a rate"]},
        ),
        (
            PlanTerms(basis="per_job", amount_minor=5, proration=Proration("linear", 60)),
            {"proration": ["only a flat_per_period plan is pro-rated"]},
        ),
        (
            linear(None),
            {"proration": {"full_time_minutes": ["a linear proration needs an int >= 1"]}},
        ),
        (linear(0), {"proration": {"full_time_minutes": ["a linear proration needs an int >= 1"]}}),
        (
            linear(60, (Tier(0, 100),)),
            {"proration": {"tiers": ["only a tiers proration has tiers"]}},
        ),
        (tiered(), {"proration": {"tiers": ["a tiers proration needs at least one tier"]}}),
        (
            tiered(Tier(60, 5000), Tier(60, 10_000)),
            {"proration": {"tiers": ["duplicate min_minutes in [60, 60]"]}},
        ),
        (
            tiered(Tier(0, 5_000), Tier(60, 10_001)),
            {"proration": {"tiers": ["tier 1: percent_bps must be at most 10000 (100%)"]}},
        ),
        (
            tiered(Tier(-1, 5000)),
            {"proration": {"tiers": ["tier 0: min_minutes and percent_bps must be ints >= 0"]}},
        ),
        (
            tiered(Tier(60, 5000), full_time_minutes=60),
            {"proration": {"full_time_minutes": ["only a linear proration has full_time_minutes"]}},
        ),
        (
            PlanTerms(basis="flat_per_period", amount_minor=1, proration=Proration("steps")),
            {"proration": {"method": ["unknown method 'steps'; expected one of linear, tiers"]}},
        ),
        (
            PlanTerms(basis="per_week", amount_minor=1),
            {
                "basis": [
                    (
                        "unknown basis 'per_week'; expected one of ['percent_of_earnings',"
                        " 'per_hour', 'per_job', 'flat_per_period']"
                    )
                ]
            },
        ),
        (
            PlanTerms(basis="per_job", amount_minor=1, period="week"),
            {"period": ["unknown period 'week'; expected one of ['month', 'quarter']"]},
        ),
        (
            PlanTerms(basis="per_job", amount_minor=1, earnings_basis="net"),
            {
                "earnings_basis": [
                    "unknown earnings_basis 'net'; expected one of ['pre_tip', 'gross']"
                ]
            },
        ),
        (
            PlanTerms(
                basis="percent_of_earnings",
                rate_bps=-1,
                min_earnings_minor=-1,
                eligibility_persists_periods=-1,
                annual_cap_minor=-1,
            ),
            {
                "rate_bps": ["must be an int >= 0"],
                "min_earnings_minor": ["must be an int >= 0"],
                "eligibility_persists_periods": ["must be an int >= 0"],
                "annual_cap_minor": ["must be an int >= 0"],
            },
        ),
        (PlanTerms(basis="per_job", amount_minor=-5), {"amount_minor": ["must be an int >= 0"]}),
    ],
)
def test_inconsistent_plan_terms_raise_validation_error_by_field(
    terms: PlanTerms, errors: dict[str, Any]
) -> None:
    with pytest.raises(ValidationError, match="inconsistent plan terms") as raised:
        validate_plan_terms(terms)
    assert raised.value.errors == errors


# --- properties of posting the difference -------------------------------------------------


@st.composite
def reports(draw: st.DrawFn) -> PeriodTotals:
    """One earnings report: tips never above gross."""
    gross = draw(st.integers(min_value=0, max_value=10**9))
    return PeriodTotals(
        gross_earnings_minor=gross,
        tips_minor=draw(st.integers(min_value=0, max_value=gross)),
        engaged_minutes=draw(st.integers(min_value=0, max_value=50_000)),
        jobs=draw(st.integers(min_value=0, max_value=500)),
    )


counts = st.integers(min_value=0, max_value=10**6)
optional_caps = st.none() | st.integers(min_value=0, max_value=10**7)
prorations = (
    st.none()
    | st.builds(
        Proration,
        method=st.just("linear"),
        full_time_minutes=st.integers(min_value=1, max_value=60_000),
    )
    | st.just(MASSACHUSETTS_TIERS)
)
plans = st.one_of(
    st.builds(
        PlanTerms,
        basis=st.just("percent_of_earnings"),
        rate_bps=st.integers(min_value=0, max_value=10_000),
        earnings_basis=st.sampled_from(["pre_tip", "gross"]),
        min_earnings_minor=counts,
        annual_cap_minor=optional_caps,
    ),
    st.builds(
        PlanTerms,
        basis=st.sampled_from(["per_hour", "per_job"]),
        amount_minor=counts,
        min_earnings_minor=counts,
        annual_cap_minor=optional_caps,
    ),
    st.builds(
        PlanTerms,
        basis=st.just("flat_per_period"),
        amount_minor=counts,
        min_earnings_minor=counts,
        annual_cap_minor=optional_caps,
        proration=prorations,
    ),
)


@given(plans, st.lists(reports(), max_size=6), reports())
def test_posting_the_same_report_twice_posts_nothing(
    terms: PlanTerms, earlier: list[PeriodTotals], report: PeriodTotals
) -> None:
    validate_plan_terms(terms)
    posted = sum(post_in_order(terms, [*earlier, report]))
    totals = aggregate([*earlier, report])
    # The resent report (same external_id) adds nothing: the aggregate, so the target, is the same.
    target = period_target_minor(terms, totals, is_eligible(terms, totals, ()), 0)
    assert amount_to_post(target, posted) == 0


@given(plans, st.lists(reports(), max_size=6), st.data())
def test_any_order_of_a_periods_reports_posts_the_same_total(
    terms: PlanTerms, period_reports: list[PeriodTotals], data: st.DataObject
) -> None:
    reordered = data.draw(st.permutations(period_reports))
    total = sum(post_in_order(terms, period_reports))
    assert sum(post_in_order(terms, reordered)) == total


@given(plans, st.lists(reports(), min_size=1, max_size=6))
def test_posting_report_by_report_adds_up_to_the_target_of_the_aggregate(
    terms: PlanTerms, period_reports: list[PeriodTotals]
) -> None:
    totals = aggregate(period_reports)
    target = period_target_minor(terms, totals, is_eligible(terms, totals, ()), 0)
    assert sum(post_in_order(terms, period_reports)) == target
