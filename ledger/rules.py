"""Plan arithmetic: plan periods, eligibility, the period's amount, caps and what to post.

Pure functions over plain values (no database). All amounts are ``int`` minor units; exact
intermediate values are ``fractions.Fraction``. Source: DOMAIN.md "Contributions" and the
programs in its table (DoorDash pilots, Wisconsin AB 269, Massachusetts Uber/Lyft settlement
2025, Alia).
"""

from __future__ import annotations

import calendar
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from fractions import Fraction
from itertools import pairwise
from typing import Any, TypeGuard

from ledger.errors import InvariantError, ValidationError
from ledger.money import round_half_up

BASES: tuple[str, ...] = ("percent_of_earnings", "per_hour", "per_job", "flat_per_period")
"""Plan bases: how a period's contribution is computed."""

PERIODS: tuple[str, ...] = ("month", "quarter")
"""Plan periods: calendar months or calendar quarters."""

EARNINGS_BASES: tuple[str, ...] = ("pre_tip", "gross")
"""Which earnings a percent plan and a threshold read: gross minus tips, or gross."""

PRORATION_METHODS: tuple[str, ...] = ("linear", "tiers")
"""How a flat per-period amount is pro-rated by engaged minutes."""

_MONTHS_IN: dict[str, int] = {"month": 1, "quarter": 3}
_BPS_WHOLE = 10_000
_MINUTES_PER_HOUR = 60


@dataclass(frozen=True)
class Tier:
    """One pro-ration tier: a period with at least ``min_minutes`` engaged minutes is paid
    ``percent_bps`` (basis points, 10000 = 100%) of the flat amount.

    Source: Massachusetts Uber/Lyft settlement 2025 (15-24.99 h/week 50%, 25+ h/week 100%).
    """

    min_minutes: int
    percent_bps: int


@dataclass(frozen=True)
class Proration:
    """How a ``flat_per_period`` amount is pro-rated by the period's engaged minutes.

    ``method`` ``"linear"``: factor min(1, minutes / ``full_time_minutes``) (employer
    stipends). ``"tiers"``: the ``percent_bps`` of the highest tier whose ``min_minutes`` the
    period reaches, 0 below the lowest (Massachusetts Uber/Lyft settlement 2025).
    Not validated on construction: see ``validate_plan_terms``.
    """

    method: str
    full_time_minutes: int | None = None
    tiers: tuple[Tier, ...] = ()


@dataclass(frozen=True)
class PlanTerms:
    """The arithmetic terms of one plan (amounts in minor units of the plan's currency).

    ``basis``: ``percent_of_earnings`` (``rate_bps`` of basis earnings; DoorDash pilots,
    Wisconsin AB 269), ``per_hour`` (``amount_minor`` per engaged hour, by the minute),
    ``per_job`` (``amount_minor`` per job; Alia) or ``flat_per_period`` (``amount_minor`` per
    period, optionally pro-rated; Massachusetts Uber/Lyft settlement 2025, employer stipends).
    ``period``: ``month`` or ``quarter``. ``earnings_basis``: ``pre_tip`` (gross - tips) or
    ``gross``. ``min_earnings_minor``: eligibility threshold on basis earnings per period;
    ``eligibility_persists_periods``: periods after one that reached it that stay eligible
    (Wisconsin AB 269: 3). ``annual_cap_minor``: most owed per calendar year (None: no cap).
    Not validated on construction: call ``validate_plan_terms``.
    """

    basis: str
    period: str = "month"
    rate_bps: int | None = None
    amount_minor: int | None = None
    earnings_basis: str = "pre_tip"
    min_earnings_minor: int = 0
    eligibility_persists_periods: int = 0
    annual_cap_minor: int | None = None
    proration: Proration | None = None


@dataclass(frozen=True)
class PeriodTotals:
    """What one member reported under one plan in one plan period (or one report of it).

    ``gross_earnings_minor`` includes ``tips_minor``; ``engaged_minutes`` and ``jobs`` are
    counts. Every field is an int >= 0 and tips never exceed gross, else construction raises
    ``ValidationError``. Source: DOMAIN.md "Contributions" (earnings report fields).
    """

    gross_earnings_minor: int = 0
    tips_minor: int = 0
    engaged_minutes: int = 0
    jobs: int = 0

    def __post_init__(self) -> None:
        """Raise ``ValidationError`` (errors by field) for a negative or non-int field."""
        errors = {
            name: ["must be an int >= 0"]
            for name, value in zip(_TOTALS_FIELDS, self._values(), strict=True)
            if not _is_count(value)
        }
        if not errors and self.tips_minor > self.gross_earnings_minor:
            errors["tips_minor"] = ["must not exceed gross_earnings_minor (gross includes tips)"]
        if errors:
            raise ValidationError("invalid period totals", errors=errors)

    def plus(self, other: PeriodTotals) -> PeriodTotals:
        """Field-wise sum: the aggregate after adding report ``other``."""
        pairs = zip(self._values(), other._values(), strict=True)
        return PeriodTotals(*(a + b for a, b in pairs))

    def minus(self, other: PeriodTotals) -> PeriodTotals:
        """Field-wise difference: the aggregate without report ``other`` (a reversal).

        Raises ``InvariantError`` when ``other`` is not part of this aggregate (a field would
        go negative, or tips would exceed gross).
        """
        pairs = zip(self._values(), other._values(), strict=True)
        try:
            return PeriodTotals(*(a - b for a, b in pairs))
        except ValidationError as error:
            raise InvariantError(f"cannot take {other} out of {self}", error.errors) from error

    def _values(self) -> tuple[int, int, int, int]:
        """Return the four fields in declaration order."""
        return (self.gross_earnings_minor, self.tips_minor, self.engaged_minutes, self.jobs)


_TOTALS_FIELDS = ("gross_earnings_minor", "tips_minor", "engaged_minutes", "jobs")


@functools.lru_cache(maxsize=4096)
def plan_period_bounds(period: str, day: date) -> tuple[date, date]:
    """Return (first day, last day) of the calendar month or quarter containing ``day``.

    Quarters start in January, April, July and October. Raises ``ValidationError`` for an
    unknown period. Source: DOMAIN.md "Contributions" (plan period: month or quarter).
    """
    months = _months_in(period)
    first_month = (day.month - 1) // months * months + 1
    last_month = first_month + months - 1
    last_day = calendar.monthrange(day.year, last_month)[1]
    return date(day.year, first_month, 1), date(day.year, last_month, last_day)


def period_starts_before(period: str, start: date, count: int) -> list[date]:
    """Return the first days of the ``count`` calendar periods just before the one starting
    at ``start``, nearest first (quarter 2026-01-01, 2 -> [2025-10-01, 2025-07-01]).

    Raises ``ValidationError`` for an unknown period, a ``start`` that is not the first day
    of a period, or a negative ``count``. Source: Wisconsin AB 269 (eligibility persists for
    the next 3 quarters).
    """
    months = _months_in(period)
    if plan_period_bounds(period, start)[0] != start:
        raise ValidationError(f"{start.isoformat()} is not the first day of a {period}")
    if not _is_count(count):
        raise ValidationError(f"count must be an int >= 0, got {count!r}")
    return list(_shifted_starts(start, months, count))


def basis_earnings_minor(terms: PlanTerms, totals: PeriodTotals) -> int:
    """Return the earnings (minor units) a percent plan and a threshold read: gross minus
    tips (``pre_tip``) or gross (``gross``).

    Raises ``ValidationError`` for an unknown ``earnings_basis``. Source: DoorDash pilots
    (pre-tip earnings), Wisconsin AB 269 (earnings without tips).
    """
    if terms.earnings_basis == "pre_tip":
        return totals.gross_earnings_minor - totals.tips_minor
    if terms.earnings_basis == "gross":
        return totals.gross_earnings_minor
    raise ValidationError(f"unknown earnings basis {terms.earnings_basis!r}")


def reaches_threshold(terms: PlanTerms, totals: PeriodTotals) -> bool:
    """Tell whether the period's basis earnings reach ``min_earnings_minor`` (>=).

    Per plan and member, never combined across plans. Source: Wisconsin AB 269 ($750 per
    quarter per company), DoorDash pilots ($1,000 pre-tip per quarter).
    """
    return basis_earnings_minor(terms, totals) >= terms.min_earnings_minor


def is_eligible(terms: PlanTerms, totals: PeriodTotals, earlier_reached: Sequence[bool]) -> bool:
    """Tell whether the period is eligible: it reaches the threshold itself, or one of the
    ``eligibility_persists_periods`` periods just before it did.

    ``earlier_reached[i]``: whether the period ``i + 1`` before this one reached the
    threshold ITSELF (a period eligible only by persistence passes False: persistence does
    not persist again); a shorter sequence means the missing periods did not reach it.
    Source: Wisconsin AB 269 (once eligible, eligible for the next 3 quarters).
    """
    window = earlier_reached[: terms.eligibility_persists_periods]
    return reaches_threshold(terms, totals) or any(window)


def exact_period_amount(terms: PlanTerms, totals: PeriodTotals) -> Fraction:
    """Return the exact amount (minor units, unrounded) the period's totals compute to,
    before eligibility and the annual cap.

    ``percent_of_earnings``: rate_bps / 10000 x basis earnings (DoorDash pilots, Wisconsin
    AB 269); ``per_hour``: amount_minor x minutes / 60; ``per_job``: amount_minor x jobs
    (Alia); ``flat_per_period``: amount_minor x pro-ration factor (Massachusetts Uber/Lyft
    settlement 2025). Raises ``ValidationError`` for an unknown basis or a missing term.
    """
    if terms.basis == "percent_of_earnings":
        rate_bps = _required(terms.rate_bps, "rate_bps")
        return Fraction(rate_bps * basis_earnings_minor(terms, totals), _BPS_WHOLE)
    amount_minor = _required(terms.amount_minor, "amount_minor")
    if terms.basis == "per_hour":
        return Fraction(amount_minor * totals.engaged_minutes, _MINUTES_PER_HOUR)
    if terms.basis == "per_job":
        return Fraction(amount_minor * totals.jobs)
    if terms.basis == "flat_per_period":
        return amount_minor * _proration_factor(terms.proration, totals.engaged_minutes)
    raise ValidationError(f"unknown plan basis {terms.basis!r}")


def _proration_factor(proration: Proration | None, minutes: int) -> Fraction:
    """Return the exact share (0..1 for valid terms) of a flat amount earned by ``minutes``.

    None: 1. ``linear``: min(1, minutes / full_time_minutes). ``tiers``: percent_bps / 10000
    of the highest tier whose ``min_minutes`` ``minutes`` reaches, 0 below the lowest.
    Raises ``ValidationError`` for an unknown method or a missing ``full_time_minutes``.
    Source: Massachusetts Uber/Lyft settlement 2025 (tiers); employer stipends (linear).
    """
    if proration is None:
        return Fraction(1)
    if proration.method == "linear":
        full_time = _required(proration.full_time_minutes, "proration.full_time_minutes")
        return min(Fraction(1), Fraction(minutes, full_time))
    if proration.method == "tiers":
        reached = [tier for tier in proration.tiers if minutes >= tier.min_minutes]
        best = max(reached, key=lambda tier: tier.min_minutes, default=None)
        return Fraction(0) if best is None else Fraction(best.percent_bps, _BPS_WHOLE)
    raise ValidationError(f"unknown proration method {proration.method!r}")


def period_target_minor(
    terms: PlanTerms,
    totals: PeriodTotals,
    eligible: bool,
    owed_other_periods_in_year_minor: int,
) -> int:
    """Return what the whole plan period owes (minor units, >= 0 for valid terms).

    0 when not ``eligible``; else ``exact_period_amount`` rounded half-up once on the
    aggregate, then, when ``annual_cap_minor`` is set, capped at
    max(0, annual_cap_minor - owed_other_periods_in_year_minor) (what the member's other
    periods of the same calendar year under this plan owe). Raises ``ValidationError`` for
    a negative ``owed_other_periods_in_year_minor`` or bad terms.
    Source: DOMAIN.md "Contributions" (rounding once per period; annual cap, excess not owed).
    """
    if not _is_count(owed_other_periods_in_year_minor):
        raise ValidationError("owed_other_periods_in_year_minor must be an int >= 0")
    if not eligible:
        return 0
    amount = round_half_up(exact_period_amount(terms, totals))
    if terms.annual_cap_minor is None:
        return amount
    return min(amount, max(0, terms.annual_cap_minor - owed_other_periods_in_year_minor))


def amount_to_post(target_minor: int, already_posted_minor: int) -> int:
    """Return the difference (minor units, >= 0) a report posts: target - already posted.

    A report sent again, or one that changes nothing, posts 0. Raises ``InvariantError``
    when the target is below what was already posted: a period only goes down through a
    reversal, never through a report. Source: DOMAIN.md "Contributions" (post the difference).
    """
    difference = target_minor - already_posted_minor
    if difference < 0:
        raise InvariantError(
            f"period target {target_minor} is below the {already_posted_minor} already posted;"
            " a downward change is a reversal"
        )
    return difference


def validate_plan_terms(terms: PlanTerms) -> None:
    """Check that ``terms`` are consistent; return None or raise ``ValidationError``.

    The error's ``errors`` maps each bad field to a list of messages (``proration``'s own
    fields nest under ``"proration"``). Checked: known ``basis``, ``period`` and
    ``earnings_basis``; ``rate_bps`` set for percent plans and only for them; ``amount_minor``
    set for the other bases and only for them; amounts, threshold, persistence and cap are
    ints >= 0; ``proration`` only on ``flat_per_period``; ``linear`` has
    ``full_time_minutes`` >= 1 and no tiers; ``tiers`` has at least one tier, no duplicate
    ``min_minutes``, each ``min_minutes`` >= 0 and ``percent_bps`` in 0..10000, and no
    ``full_time_minutes``. Source: DOMAIN.md "Contributions" (plan bases and rules).
    """
    errors: dict[str, Any] = {}
    _check_choices(terms, errors)
    _check_rate_and_amount(terms, errors)
    _check_counts(terms, errors)
    _check_proration_placement(terms, errors)
    if errors:
        raise ValidationError("inconsistent plan terms", errors=errors)


def _check_choices(terms: PlanTerms, errors: dict[str, Any]) -> None:
    """Record unknown ``basis``, ``period`` or ``earnings_basis`` values."""
    choices = (("basis", BASES), ("period", PERIODS), ("earnings_basis", EARNINGS_BASES))
    for name, allowed in choices:
        value = getattr(terms, name)
        if value not in allowed:
            errors[name] = [f"unknown {name} {value!r}; expected one of {list(allowed)}"]


def _check_rate_and_amount(terms: PlanTerms, errors: dict[str, Any]) -> None:
    """Record a missing or misplaced ``rate_bps`` / ``amount_minor`` for the plan's basis."""
    is_percent = terms.basis == "percent_of_earnings"
    if is_percent and terms.rate_bps is None:
        errors["rate_bps"] = ["required for a percent_of_earnings plan"]
    if not is_percent and terms.rate_bps is not None:
        errors["rate_bps"] = ["only a percent_of_earnings plan has a rate"]
    if not is_percent and terms.amount_minor is None:
        errors["amount_minor"] = [f"required for a {terms.basis} plan"]
    if is_percent and terms.amount_minor is not None:
        errors["amount_minor"] = ["a percent_of_earnings plan has a rate, not an amount"]


def _check_counts(terms: PlanTerms, errors: dict[str, Any]) -> None:
    """Record numeric terms that are set but not ints >= 0."""
    for name in (
        "rate_bps",
        "amount_minor",
        "min_earnings_minor",
        "eligibility_persists_periods",
        "annual_cap_minor",
    ):
        value = getattr(terms, name)
        if value is not None and not _is_count(value):
            errors.setdefault(name, []).append("must be an int >= 0")


def _check_proration_placement(terms: PlanTerms, errors: dict[str, Any]) -> None:
    """Record proration on a plan that is not flat, or inconsistent proration terms."""
    if terms.proration is None:
        return
    if terms.basis != "flat_per_period":
        errors["proration"] = ["only a flat_per_period plan is pro-rated"]
        return
    proration_errors = _proration_errors(terms.proration)
    if proration_errors:
        errors["proration"] = proration_errors


def _proration_errors(proration: Proration) -> dict[str, list[str]]:
    """Return the errors of one proration, by its field."""
    if proration.method == "linear":
        return _linear_errors(proration)
    if proration.method == "tiers":
        return _tiers_errors(proration)
    return {"method": [f"unknown method {proration.method!r}; expected one of linear, tiers"]}


def _linear_errors(proration: Proration) -> dict[str, list[str]]:
    """Errors of a linear proration: needs full_time_minutes >= 1 and no tiers."""
    errors: dict[str, list[str]] = {}
    full_time = proration.full_time_minutes
    if not (_is_count(full_time) and full_time >= 1):
        errors["full_time_minutes"] = ["a linear proration needs an int >= 1"]
    if proration.tiers:
        errors["tiers"] = ["only a tiers proration has tiers"]
    return errors


def _tiers_errors(proration: Proration) -> dict[str, list[str]]:
    """Errors of a tiers proration: at least one well-formed tier, distinct min_minutes."""
    errors: dict[str, list[str]] = {}
    tier_errors = _each_tier_errors(proration.tiers)
    if tier_errors:
        errors["tiers"] = tier_errors
    if proration.full_time_minutes is not None:
        errors["full_time_minutes"] = ["only a linear proration has full_time_minutes"]
    return errors


def _each_tier_errors(tiers: tuple[Tier, ...]) -> list[str]:
    """Messages for an empty tier list, duplicate thresholds, out-of-range tiers, or a tier
    paying less than a tier with fewer minutes (a later report adding minutes would then
    owe less than the period already posted, which only a reversal may do)."""
    if not tiers:
        return ["a tiers proration needs at least one tier"]
    messages = []
    thresholds = [tier.min_minutes for tier in tiers]
    if len(set(thresholds)) != len(thresholds):
        messages.append(f"duplicate min_minutes in {thresholds}")
    for index, tier in enumerate(tiers):
        if not (_is_count(tier.min_minutes) and _is_count(tier.percent_bps)):
            messages.append(f"tier {index}: min_minutes and percent_bps must be ints >= 0")
        elif tier.percent_bps > _BPS_WHOLE:
            messages.append(f"tier {index}: percent_bps must be at most {_BPS_WHOLE} (100%)")
    if not messages:
        ordered = sorted(tiers, key=lambda tier: tier.min_minutes)
        if any(low.percent_bps > high.percent_bps for low, high in pairwise(ordered)):
            messages.append("percent_bps must not decrease as min_minutes grows (more time never pays less)")
    return messages


def _months_in(period: str) -> int:
    """Months in a plan period; ``ValidationError`` for an unknown period."""
    if period not in _MONTHS_IN:
        raise ValidationError(f"unknown plan period {period!r}; expected month or quarter")
    return _MONTHS_IN[period]


@functools.lru_cache(maxsize=4096)
def _shifted_starts(start: date, months: int, count: int) -> tuple[date, ...]:
    return tuple(_first_of_month_shifted(start, -months * back) for back in range(1, count + 1))


def _first_of_month_shifted(first: date, months: int) -> date:
    """Return the first day of the month ``months`` (may be negative) after ``first``'s month."""
    index = first.year * 12 + first.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _required(value: int | None, name: str) -> int:
    """Return ``value``, or raise ``ValidationError`` naming the missing plan term."""
    if value is None:
        raise ValidationError(f"plan term {name} is required", errors={name: ["required"]})
    return value


def _is_count(value: object) -> TypeGuard[int]:
    """Tell whether ``value`` is an ``int`` (not ``bool``) >= 0."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
