"""Employer stipends: ``flat_per_period`` plans paid on a schedule (DOMAIN.md "Accrual", last point).

At each plan period's end, every member enrolled with the plan's contributor during the
period is owed ``amount_minor x days enrolled / days in the period``, counting only days from
the plan's ``effective_from`` (a plan starting mid-period pays that part), rounded half-up once
(DOMAIN.md "Money"), split by the plan's allocation (or the member's election under
``member_election``) with the largest remainder. It is posted into the contributor's
open monthly remittance when it is posted (DOMAIN.md "Funding": a contribution belongs to the
open remittance of the month it is posted in), pending until the employer pays. Each
(member, plan, period) is paid once: its period aggregate row records it.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from fractions import Fraction
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Table, inspect, select
from sqlalchemy.orm import Session
from sqlmodel import col

from ledger.bulk import insert_rows
from ledger.ids import new_id
from ledger.money import BUCKETS, round_half_up, split_largest_remainder
from ledger.postings import post
from ledger.rules import plan_period_bounds
from ledger.services.contributions import posting
from ledger.services.members import member_allocation
from ledger.services.remittances import fund_from_suspense, monthly_remittance
from ledger.tables import Contribution, Contributor, Enrollment, Member, PeriodAggregate, Plan

CONTRIBUTIONS = cast(Table, inspect(Contribution).local_table)
AGGREGATES = cast(Table, inspect(PeriodAggregate).local_table)


def stipend_minor(amount_minor: int, days_enrolled: int, period_days: int) -> int:
    """``amount_minor x days_enrolled / period_days``, half-up once (10 of 30 days of 90,000 -> 30,000)."""
    return round_half_up(Fraction(amount_minor * days_enrolled, period_days))


def periods_ended(plan: Plan, after: date | None, through: date) -> list[tuple[date, date]]:
    """The plan's periods (first day, last day) that ended in (``after``, ``through``], oldest first,
    none before the plan's ``effective_from``."""
    found = []
    start, end = plan_period_bounds(plan.period, plan.effective_from)
    while end <= through:
        if after is None or end > after:
            found.append((start, end))
        start, end = plan_period_bounds(plan.period, end + timedelta(days=1))
    return found


def pay_period(session: Session, plan_id: str, start: date, end: date, tz: ZoneInfo, due_day: int,
               now: datetime) -> tuple[int, int]:
    """Pay ``plan``'s stipend for the period [start, end] to every member enrolled during it
    and not paid yet; returns (members paid, minor units)."""
    plan = session.scalar(select(Plan).where(col(Plan.id) == plan_id).with_for_update())  # one run per plan at a time
    assert plan is not None
    contributor = session.scalar(select(Contributor).where(col(Contributor.id) == plan.contributor_id))
    assert contributor is not None
    boundary = datetime.combine(end + timedelta(days=1), datetime.min.time(), tz)
    enrolled = session.execute(select(col(Enrollment.member_id), col(Enrollment.worker_ref),
                                      col(Enrollment.created_at), Member)
                               .join(Member, col(Member.id) == col(Enrollment.member_id)).where(
        col(Enrollment.contributor_id) == plan.contributor_id, col(Enrollment.created_at) < boundary)
        .order_by(col(Enrollment.seq))).all()
    paid = set(session.scalars(select(col(PeriodAggregate.member_id)).where(
        col(PeriodAggregate.plan_id) == plan.id, col(PeriodAggregate.period_start) == start)))
    period_days = (end - start).days + 1
    fixed = {"healthcare": plan.allocation_healthcare_bps, "retirement": plan.allocation_retirement_bps,
             "training": plan.allocation_training_bps}
    rows: list[dict[str, Any]] = []
    aggregates: list[dict[str, Any]] = []
    rem = None
    for member_id, worker_ref, created_at, member in enrolled:
        if member_id in paid:
            continue
        paid.add(member_id)
        # days enrolled while the plan is in force: a plan does not pay before its effective_from
        first_day = max(start, plan.effective_from, created_at.astimezone(tz).date())
        amount = stipend_minor(int(plan.amount_minor or 0), (end - first_day).days + 1, period_days)
        weights = (member_allocation(member) if plan.allocation_mode == "member_election" else None) or fixed
        split = split_largest_remainder(amount, weights)
        if rem is None:
            # DOMAIN.md: a contribution belongs to the open remittance of the month it is posted in
            rem = monthly_remittance(session, plan.contributor_id, contributor.currency, now.astimezone(tz).date(),
                                     due_day, now)
        aggregates.append({"member_id": member_id, "plan_id": plan.id, "period_start": start, "period_end": end,
                           "gross_earnings_minor": 0, "tips_minor": 0, "engaged_minutes": 0, "jobs": 0,
                           "reached_threshold": True, "eligible": True, "posted_minor": amount})
        rows.append({
            "id": new_id("ctb"), "kind": "stipend", "external_id": None, "contributor_id": plan.contributor_id,
            "member_id": member_id, "worker_ref": worker_ref, "plan_id": plan.id, "remittance_id": rem.id,
            "currency": contributor.currency, "period_start": first_day, "period_end": end,
            "plan_period_start": start, "gross_earnings_minor": 0, "tips_minor": 0, "engaged_minutes": 0,
            "jobs": 0, "amount_minor": amount, **{f"allocation_{b}_minor": split[b] for b in BUCKETS},
            "eligible": True, "status": "pending" if amount > 0 else "available", "request_hash": None,
            "available_at": None if amount > 0 else now, "created_at": now,
        })
    if not rows or rem is None:
        return 0, 0
    insert_rows(session, AGGREGATES, aggregates)
    insert_rows(session, CONTRIBUTIONS, rows)
    paying = [r for r in rows if r["amount_minor"] > 0]
    if paying:
        post(session, [posting(paying, kind="stipend")], now)
    total = sum(r["amount_minor"] for r in rows)
    rem.amount_due_minor += total
    rem.line_count += len(rows)
    session.flush()
    fund_from_suspense(session, rem, now)
    return len(rows), total
