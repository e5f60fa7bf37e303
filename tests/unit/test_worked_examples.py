"""DOMAIN.md's worked examples 1-8 (USD, cents), one story per test, computed the ledger's way.

Each report adds to its period's aggregate; the period's target is computed once on the
aggregate (``period_target_minor``); the report posts ``amount_to_post(target, posted)``; each
posted amount is split into buckets by largest remainder.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import date

from ledger.money import split_largest_remainder
from ledger.rules import (
    PeriodTotals,
    PlanTerms,
    Proration,
    Tier,
    amount_to_post,
    exact_period_amount,
    is_eligible,
    period_starts_before,
    period_target_minor,
    plan_period_bounds,
    reaches_threshold,
)

FIFTY_THIRTY_TWENTY = {"healthcare": 5000, "retirement": 3000, "training": 2000}
FOUR_PERCENT_MONTHLY = PlanTerms(basis="percent_of_earnings", rate_bps=400)
FOUR_PERCENT_QUARTERLY = dataclasses.replace(FOUR_PERCENT_MONTHLY, period="quarter")


def post_reports(terms: PlanTerms, reports: Sequence[PeriodTotals]) -> list[int]:
    """Post one period's reports in order, as the ledger does; return what each one posts."""
    totals, posted, amounts = PeriodTotals(), 0, []
    for report in reports:
        totals = totals.plus(report)
        target = period_target_minor(terms, totals, is_eligible(terms, totals, ()), 0)
        amount = amount_to_post(target, posted)
        posted += amount
        amounts.append(amount)
    return amounts


def earnings(cents: int, tips: int = 0) -> PeriodTotals:
    """One earnings report of ``cents`` gross with ``tips`` of it in tips."""
    return PeriodTotals(gross_earnings_minor=cents, tips_minor=tips)


def add_buckets(*splits: dict[str, int]) -> dict[str, int]:
    """Bucket totals of several splits."""
    return {name: sum(split[name] for split in splits) for name in splits[0]}


def test_four_percent_of_1234_56_posts_4938_split_2469_1481_988() -> None:
    (posted,) = post_reports(FOUR_PERCENT_MONTHLY, [earnings(123_456)])
    assert posted == 4_938
    assert split_largest_remainder(posted, FIFTY_THIRTY_TWENTY) == {
        "healthcare": 2_469,
        "retirement": 1_481,
        "training": 988,
    }


def test_100_split_in_thirds_is_34_33_33() -> None:
    thirds = {"healthcare": 1, "retirement": 1, "training": 1}
    assert split_largest_remainder(100, thirds) == {
        "healthcare": 34,
        "retirement": 33,
        "training": 33,
    }


def test_two_platforms_4000_and_1537_fill_buckets_2769_1661_1107() -> None:
    three_percent = PlanTerms(basis="percent_of_earnings", rate_bps=300)
    (from_a,) = post_reports(FOUR_PERCENT_MONTHLY, [earnings(100_000)])
    (from_b,) = post_reports(three_percent, [earnings(51_237)])
    split_a = split_largest_remainder(from_a, FIFTY_THIRTY_TWENTY)
    split_b = split_largest_remainder(from_b, FIFTY_THIRTY_TWENTY)
    assert (from_a, from_b) == (4_000, 1_537)
    assert split_a == {"healthcare": 2_000, "retirement": 1_200, "training": 800}
    assert split_b == {"healthcare": 769, "retirement": 461, "training": 307}
    assert add_buckets(split_a, split_b) == {
        "healthcare": 2_769,
        "retirement": 1_661,
        "training": 1_107,
    }


def test_three_3_33_reports_post_13_14_13_so_the_month_owes_40_in_buckets_19_12_9() -> None:
    posted = post_reports(FOUR_PERCENT_MONTHLY, [earnings(333)] * 3)
    splits = [split_largest_remainder(amount, FIFTY_THIRTY_TWENTY) for amount in posted]
    assert posted == [13, 14, 13]
    assert sum(posted) == 40
    assert [tuple(split.values()) for split in splits] == [(6, 4, 3), (7, 4, 3), (6, 4, 3)]
    assert add_buckets(*splits) == {"healthcare": 19, "retirement": 12, "training": 9}


def test_1000_threshold_pays_on_1000_pre_tip_but_not_on_1050_with_100_tips_or_999_99() -> None:
    doordash = dataclasses.replace(FOUR_PERCENT_QUARTERLY, min_earnings_minor=100_000)
    assert post_reports(doordash, [earnings(100_000)]) == [4_000]
    assert post_reports(doordash, [earnings(105_000, tips=10_000)]) == [0]
    assert post_reports(doordash, [earnings(99_999)]) == [0]


def test_600_on_each_of_two_platforms_with_a_750_threshold_posts_0_from_each() -> None:
    wisconsin = dataclasses.replace(FOUR_PERCENT_QUARTERLY, min_earnings_minor=75_000)
    platform_a, platform_b = wisconsin, dataclasses.replace(wisconsin)
    # Each plan is computed alone: the two $600 are never combined into $1,200.
    assert post_reports(platform_a, [earnings(60_000)]) == [0]
    assert post_reports(platform_b, [earnings(60_000)]) == [0]


def test_eligibility_persisting_3_quarters_posts_3200_1200_400_200_then_0() -> None:
    wisconsin = dataclasses.replace(
        FOUR_PERCENT_QUARTERLY, min_earnings_minor=75_000, eligibility_persists_periods=3
    )
    quarters = [date(2025, 7, 1), date(2025, 10, 1), date(2026, 1, 1), date(2026, 4, 1),
                date(2026, 7, 1)]  # fmt: skip
    quarterly_cents = [80_000, 30_000, 10_000, 5_000, 70_000]
    reached_itself: dict[date, bool] = {}
    posted = []
    for start, cents in zip(quarters, quarterly_cents, strict=True):
        assert plan_period_bounds("quarter", start)[0] == start
        totals = earnings(cents)
        before = period_starts_before("quarter", start, wisconsin.eligibility_persists_periods)
        earlier_reached = [reached_itself.get(day, False) for day in before]
        eligible = is_eligible(wisconsin, totals, earlier_reached)
        posted.append(period_target_minor(wisconsin, totals, eligible, 0))
        reached_itself[start] = reaches_threshold(wisconsin, totals)
    assert posted == [3_200, 1_200, 400, 200, 0]


def test_600_then_500_in_one_quarter_with_a_750_threshold_posts_0_then_4400() -> None:
    wisconsin = dataclasses.replace(FOUR_PERCENT_QUARTERLY, min_earnings_minor=75_000)
    assert post_reports(wisconsin, [earnings(60_000), earnings(50_000)]) == [0, 4_400]


def test_massachusetts_tiers_pay_53700_for_255_hours_and_107400_for_330_hours() -> None:
    thirteen_weeks = 13
    tiers = (
        Tier(min_minutes=15 * 60 * thirteen_weeks, percent_bps=5_000),
        Tier(min_minutes=25 * 60 * thirteen_weeks, percent_bps=10_000),
    )
    assert tiers == (Tier(11_700, 5_000), Tier(19_500, 10_000))
    stipend = PlanTerms(
        basis="flat_per_period",
        period="quarter",
        amount_minor=107_400,
        proration=Proration(method="tiers", tiers=tiers),
    )
    assert post_reports(stipend, [PeriodTotals(engaged_minutes=255 * 60)]) == [53_700]
    assert post_reports(stipend, [PeriodTotals(engaged_minutes=330 * 60)]) == [107_400]


def test_annual_cap_5000_with_4900_owed_turns_a_new_300_into_100() -> None:
    capped = dataclasses.replace(FOUR_PERCENT_MONTHLY, annual_cap_minor=500_000)
    totals = earnings(750_000)
    assert exact_period_amount(capped, totals) == 30_000
    target = period_target_minor(capped, totals, True, owed_other_periods_in_year_minor=490_000)
    assert amount_to_post(target, 0) == 10_000
