"""Earnings reports in, contributions out: posting the difference per plan period.

DOMAIN.md "Contributions": the ledger computes what a plan owes for the whole plan period
containing a report, over all of that member's reports under that plan in the period,
and posts the difference from what it already posted. Each posted amount credits the
member's pending buckets against the contributor's receivable.

One report (``post_report``) joins the contributor's open monthly remittance; a batch
(``post_remittance``, up to 10,000 lines) is one remittance, all lines or none. Both go
through ``_ReportPoster``, which works in sets: one query per kind of row, one lock pass
over the (member, plan) anchors in sorted order, bulk inserts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from types import SimpleNamespace
from typing import Any, cast

from sqlalchemy import Table, inspect, select, tuple_
from sqlalchemy.orm import Session
from sqlmodel import col

from ledger.bulk import in_list, insert_rows, update_rows
from ledger.db import Database, fetch, insert_ignore
from ledger.errors import ConflictError, NotFoundError, ValidationError
from ledger.ids import new_id
from ledger.money import BUCKETS, split_largest_remainder
from ledger.pagination import Page, paginate
from ledger.postings import AccountRef, Leg, NewTransaction, member_account, payer_receivable, post
from ledger.principal import Principal
from ledger.rules import (
    PeriodTotals,
    PlanTerms,
    amount_to_post,
    is_eligible,
    period_starts_before,
    period_target_minor,
    plan_period_bounds,
    reaches_threshold,
)
from ledger.services.catalog import plan_allocation, plan_terms
from ledger.services.members import load_member, member_allocation
from ledger.services.remittances import (
    fund_from_suspense,
    lock_remittance,
    monthly_remittance,
    new_batch,
    suspense_balance,
)
from ledger.tables import (
    Contribution,
    Contributor,
    Enrollment,
    Member,
    MemberPlan,
    PeriodAggregate,
    Plan,
    Remittance,
)

CONTRIBUTIONS = cast(Table, inspect(Contribution).local_table)
AGGREGATES = cast(Table, inspect(PeriodAggregate).local_table)
ANCHORS = cast(Table, inspect(MemberPlan).local_table)
MAX_LINES = 10_000
ALLOCATION_COLUMNS = tuple(f"allocation_{b}_minor" for b in BUCKETS)
#: The largest amount one report may add: the contract's bound on any amount (API.md
#: "Conventions"). Plans within their own bounds can compute more (10^12 per job x 10^6
#: jobs); such a report is refused rather than overflowing the ledger's BIGINT columns.
MAX_CONTRIBUTION_MINOR = 10**12
_CHUNK = 2000


@dataclass(frozen=True)
class Report:
    """One earnings report as the contract names it (API.md "Earnings report")."""

    external_id: str
    worker_ref: str
    plan_id: str
    period_start: date
    period_end: date
    currency: str
    gross_earnings_minor: int
    tips_minor: int = 0
    engaged_minutes: int = 0
    jobs: int = 0

    @property
    def totals(self) -> PeriodTotals:
        """The report's amounts as period totals."""
        return PeriodTotals(self.gross_earnings_minor, self.tips_minor, self.engaged_minutes, self.jobs)

    def fields(self) -> tuple[Any, ...]:
        """The report's values in field order (what makes two reports the same)."""
        return (self.external_id, self.worker_ref, self.plan_id, self.period_start.isoformat(),
                self.period_end.isoformat(), self.currency, self.gross_earnings_minor, self.tips_minor,
                self.engaged_minutes, self.jobs)

    def digest(self) -> str:
        """SHA-256 of the report's values: the same report sent again matches."""
        return hashlib.sha256(repr(self.fields()).encode()).hexdigest()


@dataclass
class Settings:
    """What posting needs from the configuration: the business date and the due day."""

    today: date
    now: datetime
    due_day: int


@dataclass
class DryRunResult:
    """What a remittance would post, computed and rolled back (``?dry_run=true``)."""

    external_id: str
    currency: str
    line_count: int
    amount_due_minor: int
    contributions: list[Any]


class _DryRun(Exception):
    def __init__(self, result: DryRunResult) -> None:
        super().__init__("dry run")
        self.result = result


def post_report(db: Database, principal: Principal, report: Report, clock: Settings) -> tuple[Contribution, bool]:
    """Post one earnings report; returns (contribution, created).

    The same report under a used ``external_id`` returns the first contribution
    (created False); another report under it raises ConflictError. Invalid against the
    ledger (unknown plan, worker not enrolled, period rules): ValidationError.
    """
    contributor_id = _platform(principal)

    def run(session: Session) -> tuple[Contribution, bool]:
        poster = _ReportPoster(session, contributor_id, [report], clock)
        poster.validate(batch=False)
        poster.lock_anchors()
        existing = session.scalar(
            select(Contribution).where(col(Contribution.contributor_id) == contributor_id,
                                       col(Contribution.external_id) == report.external_id)
        )
        if existing is not None:
            if existing.request_hash != report.digest():
                raise ConflictError("external_id was used for another report",
                                    {"external_id": ["Already used for another report."]})
            return existing, False
        rem = monthly_remittance(session, contributor_id, report.currency, clock.today, clock.due_day, clock.now)
        row = poster.post_into(rem)[0]
        written = session.scalar(select(Contribution).where(Contribution.id == row["id"]))
        assert written is not None
        return written, True

    return db.transaction(run)


def post_remittance(
    db: Database, principal: Principal, external_id: str, currency: str, reports: list[Report],
    clock: Settings, dry_run: bool = False,
) -> tuple[Remittance, bool] | DryRunResult:
    """Post a batch of reports as one remittance, all or nothing; returns (remittance, created).

    Any bad line raises ValidationError with ``errors["lines"][index]``. The same
    ``external_id`` with the same body returns the first remittance (created False);
    with another body, ConflictError. ``dry_run`` computes everything and records nothing.
    """
    contributor_id = _platform(principal)
    request_hash = hashlib.sha256(repr((external_id, currency, [r.fields() for r in reports])).encode()).hexdigest()

    def run(session: Session) -> tuple[Remittance, bool]:
        existing = session.scalar(
            select(Remittance).where(col(Remittance.contributor_id) == contributor_id,
                                     col(Remittance.external_id) == external_id)
        )
        if existing is not None:
            if dry_run:
                # a dry run answers what posting would do; this remittance would not be posted
                raise ConflictError(f"this external_id is already recorded as remittance {existing.id}",
                                    {"external_id": ["Already recorded."]})
            if existing.request_hash != request_hash:
                raise ConflictError("external_id was used for another remittance",
                                    {"external_id": ["Already used for another remittance."]})
            return existing, False
        poster = _ReportPoster(session, contributor_id, reports, clock, batch_currency=currency)
        poster.validate(batch=True)
        rem = new_batch(contributor_id, external_id, currency, request_hash, len(reports),
                        clock.today, clock.due_day, clock.now)
        session.add(rem)
        session.flush()  # the unique (contributor, external_id) fences a concurrent twin here
        poster.lock_anchors()
        poster.reject_used_external_ids()
        rows = poster.post_into(rem)
        if dry_run:
            contributions = [SimpleNamespace(**row) for row in rows]
            raise _DryRun(DryRunResult(external_id, currency, len(reports), rem.amount_due_minor, contributions))
        return rem, True

    try:
        return db.transaction(run)
    except _DryRun as dry:
        return dry.result


def _platform(principal: Principal) -> str:
    assert principal.role == "platform" and principal.contributor_id, "reports come from platform keys"
    return principal.contributor_id


@dataclass
class _Aggregate:
    seq: int | None
    member_id: str
    plan_id: str
    period_start: date
    period_end: date
    totals: PeriodTotals
    reached_threshold: bool
    eligible: bool
    posted_minor: int
    dirty: bool = False

    @classmethod
    def from_row(cls, row: Any) -> _Aggregate:
        """The aggregate as stored in ``period_aggregates``."""
        return cls(row.seq, row.member_id, row.plan_id, row.period_start, row.period_end,
                   PeriodTotals(row.gross_earnings_minor, row.tips_minor, row.engaged_minutes, row.jobs),
                   row.reached_threshold, row.eligible, row.posted_minor)

    def row(self) -> dict[str, Any]:
        return {
            "member_id": self.member_id, "plan_id": self.plan_id, "period_start": self.period_start,
            "period_end": self.period_end, "gross_earnings_minor": self.totals.gross_earnings_minor,
            "tips_minor": self.totals.tips_minor, "engaged_minutes": self.totals.engaged_minutes,
            "jobs": self.totals.jobs, "reached_threshold": self.reached_threshold,
            "eligible": self.eligible, "posted_minor": self.posted_minor,
        }


@dataclass
class _ReportPoster:
    """The working set of one posting: reports, their members, plans and period aggregates."""

    session: Session
    contributor_id: str
    reports: list[Report]
    clock: Settings
    batch_currency: str | None = None
    members: list[str] = field(default_factory=list)
    plans: dict[str, Plan] = field(default_factory=dict)
    terms: dict[str, PlanTerms] = field(default_factory=dict)
    allocations: dict[str, dict[str, int]] = field(default_factory=dict)
    aggregates: dict[tuple[str, str], dict[date, _Aggregate]] = field(default_factory=dict)

    # -- validation against the ledger -------------------------------------------------

    def validate(self, batch: bool) -> None:
        """Check each report against plans, enrollments and dates; raise ValidationError."""
        contributor = self.session.scalar(select(Contributor).where(col(Contributor.id) == self.contributor_id))
        if contributor is None:
            raise NotFoundError("contributor not found")
        plan_ids = sorted({r.plan_id for r in self.reports})
        self.plans = {p.id: p for p in self.session.scalars(select(Plan).where(in_list(Plan.id, plan_ids)))}
        self.terms = {pid: plan_terms(p) for pid, p in self.plans.items()}
        self.allocations = {pid: plan_allocation(p) for pid, p in self.plans.items()}
        enrolled = self._enrollments()
        errors: dict[int, dict[str, list[str]]] = {}
        seen: set[str] = set()
        for index, report in enumerate(self.reports):
            problems = self._check(report, contributor.currency, enrolled)
            if batch and report.external_id in seen:
                problems.setdefault("external_id", []).append("Used twice in this remittance.")
            seen.add(report.external_id)
            if problems:
                errors[index] = problems
            else:
                self.members.append(enrolled[report.worker_ref])
        if errors:
            if batch:
                raise ValidationError("some lines are invalid; nothing was recorded", {"lines": errors})
            raise ValidationError("the report is invalid", errors[0])

    def _enrollments(self) -> dict[str, str]:
        refs = sorted({r.worker_ref for r in self.reports})
        found: dict[str, str] = {}
        for start in range(0, len(refs), _CHUNK):
            rows = self.session.execute(
                select(col(Enrollment.worker_ref), col(Enrollment.member_id)).where(
                    col(Enrollment.contributor_id) == self.contributor_id,
                    in_list(Enrollment.worker_ref, refs[start : start + _CHUNK]),
                )
            )
            found.update({row.worker_ref: row.member_id for row in rows})
        return found

    def _check(self, report: Report, currency: str, enrolled: dict[str, str]) -> dict[str, list[str]]:
        problems: dict[str, list[str]] = {}

        def add(name: str, message: str) -> None:
            problems.setdefault(name, []).append(message)

        if self.batch_currency is not None and report.currency != self.batch_currency:
            add("currency", "Must be the remittance's currency.")
        elif report.currency != currency:
            add("currency", f"Must be the contributor's currency ({currency}).")
        plan = self.plans.get(report.plan_id)
        if plan is None or plan.contributor_id != self.contributor_id:
            add("plan_id", "Unknown plan.")
        elif plan.paid_by != "reports":
            add("plan_id", "This plan is paid on a schedule and takes no earnings reports.")
        else:
            start, end = plan_period_bounds(plan.period, report.period_start)
            if report.period_end > end:
                add("period_end", f"The report must lie inside one plan {plan.period} ({start} to {end}).")
            if report.period_start < plan.effective_from:
                add("period_start", f"Before the plan's effective_from ({plan.effective_from}).")
        if report.period_end > self.clock.today:
            add("period_end", "Must not be in the future.")
        if report.worker_ref not in enrolled:
            add("worker_ref", "Not enrolled with this contributor.")
        return problems

    def reject_used_external_ids(self) -> None:
        """Batch only: an ``external_id`` already recorded is a line error."""
        ids = [r.external_id for r in self.reports]
        used: set[str] = set()
        for start in range(0, len(ids), _CHUNK):
            used.update(self.session.scalars(
                select(col(Contribution.external_id)).where(
                    col(Contribution.contributor_id) == self.contributor_id,
                    in_list(Contribution.external_id, ids[start : start + _CHUNK]),
                )
            ))
        if used:
            errors = {i: {"external_id": ["Already used by an earlier report."]}
                      for i, r in enumerate(self.reports) if r.external_id in used}
            raise ValidationError("some lines are invalid; nothing was recorded", {"lines": errors})

    # -- locking and loading -------------------------------------------------------------

    def lock_anchors(self) -> None:
        """Lock each (member, plan) pair in sorted order, then load its period aggregates."""
        pairs = sorted({(m, r.plan_id) for m, r in zip(self.members, self.reports, strict=True)})
        insert_ignore(self.session, ANCHORS, [{"member_id": m, "plan_id": p} for m, p in pairs])
        plan_ids = sorted({p for _, p in pairs})
        members = sorted({m for m, _ in pairs})
        for start in range(0, len(members), _CHUNK):
            self.session.execute(
                select(ANCHORS.c.seq).where(in_list(ANCHORS.c.member_id, members[start : start + _CHUNK]),
                                            in_list(ANCHORS.c.plan_id, plan_ids))
                .order_by(ANCHORS.c.member_id, ANCHORS.c.plan_id).with_for_update()
            ).all()
        self._load_aggregates(pairs)

    def _load_aggregates(self, pairs: list[tuple[str, str]]) -> None:
        earliest = min(self._earliest_needed(r) for r in self.reports)
        self.aggregates = {pair: {} for pair in pairs}
        plan_ids = sorted({p for _, p in pairs})
        members = sorted({m for m, _ in pairs})
        for start in range(0, len(members), _CHUNK):
            rows = self.session.execute(
                select(AGGREGATES).where(
                    in_list(AGGREGATES.c.member_id, members[start : start + _CHUNK]),
                    in_list(AGGREGATES.c.plan_id, plan_ids),
                    AGGREGATES.c.period_start >= earliest,
                )
            )
            for row in rows:
                if (row.member_id, row.plan_id) not in self.aggregates:
                    continue
                self.aggregates[(row.member_id, row.plan_id)][row.period_start] = _Aggregate.from_row(row)

    def _earliest_needed(self, report: Report) -> date:
        plan = self.plans[report.plan_id]
        return earliest_period_needed(plan, plan_period_bounds(plan.period, report.period_start)[0])

    # -- computing and writing -------------------------------------------------------------

    def post_into(self, rem: Remittance) -> list[dict[str, Any]]:
        """Compute every report in order, write contributions and postings into ``rem``.

        Returns the contribution rows as written (before any funding from suspense).
        """
        elections = self._elections()
        rows: list[dict[str, Any]] = []
        too_large: dict[int, dict[str, list[str]]] = {}
        for index, (member_id, report) in enumerate(zip(self.members, self.reports, strict=True)):
            row = self._compute(member_id, report, rem, elections.get(member_id))
            if row["amount_minor"] > MAX_CONTRIBUTION_MINOR:
                too_large[index] = {"_schema": [
                    f"This report would add {row['amount_minor']} minor units, more than the largest "
                    f"contribution the ledger accepts ({MAX_CONTRIBUTION_MINOR})."]}
            rows.append(row)
        if too_large:
            if self.batch_currency is None:
                raise ValidationError("the contribution is too large", too_large[0])
            raise ValidationError("some lines are invalid; nothing was recorded", {"lines": too_large})
        self._write_aggregates()
        insert_rows(self.session, CONTRIBUTIONS, rows)
        paying = [row for row in rows if row["amount_minor"] > 0]
        if paying:
            post(self.session, [posting(paying)], self.clock.now)
        total = sum(row["amount_minor"] for row in rows)
        rem.amount_due_minor += total
        if rem.kind != "batch":
            rem.line_count += len(rows)
        self.session.flush()
        if total > 0 and rem.kind != "batch" and suspense_balance(self.session, rem) > 0:
            fund_from_suspense(self.session, rem, self.clock.now)
        return rows

    def _elections(self) -> dict[str, dict[str, int]]:
        """Elections of the members reported under ``member_election`` plans."""
        electing = {p.id for p in self.plans.values() if p.allocation_mode == "member_election"}
        members = sorted({m for m, r in zip(self.members, self.reports, strict=True) if r.plan_id in electing})
        found: dict[str, dict[str, int]] = {}
        for start in range(0, len(members), _CHUNK):
            rows = self.session.execute(
                select(col(Member.id), col(Member.election_healthcare_bps), col(Member.election_retirement_bps),
                       col(Member.election_training_bps))
                .where(in_list(Member.id, members[start : start + _CHUNK]),
                       col(Member.election_healthcare_bps).is_not(None))
            )
            for member_id, healthcare, retirement, training in rows:
                # the three are always set together (PUT .../allocation)
                found[member_id] = {"healthcare": int(healthcare or 0), "retirement": int(retirement or 0),
                                    "training": int(training or 0)}
        return found

    def _compute(self, member_id: str, report: Report, rem: Remittance,
                 election: dict[str, int] | None) -> dict[str, Any]:
        plan, terms = self.plans[report.plan_id], self.terms[report.plan_id]
        periods = self.aggregates[(member_id, plan.id)]
        start, end = plan_period_bounds(plan.period, report.period_start)
        agg = periods.get(start)
        if agg is None:
            agg = periods[start] = _Aggregate(None, member_id, plan.id, start, end, report.totals, False, False, 0)
        else:
            agg.totals = agg.totals.plus(report.totals)
        amount = recompute(terms, plan, agg, periods)
        allocation = election if plan.allocation_mode == "member_election" and election else \
            self.allocations[plan.id]
        split = split_largest_remainder(amount, allocation)
        return {
            "id": new_id("ctb"), "kind": "report", "external_id": report.external_id,
            "contributor_id": self.contributor_id, "member_id": member_id, "worker_ref": report.worker_ref,
            "plan_id": plan.id, "remittance_id": rem.id, "currency": report.currency,
            "period_start": report.period_start, "period_end": report.period_end, "plan_period_start": start,
            "gross_earnings_minor": report.gross_earnings_minor, "tips_minor": report.tips_minor,
            "engaged_minutes": report.engaged_minutes, "jobs": report.jobs, "amount_minor": amount,
            **{column: split[b] for b, column in zip(BUCKETS, ALLOCATION_COLUMNS, strict=True)},
            "eligible": agg.eligible, "status": "pending" if amount > 0 else "available",
            "request_hash": report.digest(), "available_at": None if amount > 0 else self.clock.now,
            "created_at": self.clock.now,
        }

    def _write_aggregates(self) -> None:
        dirty = [a for periods in self.aggregates.values() for a in periods.values() if a.dirty]
        write_aggregates(self.session, dirty)


def earliest_period_needed(plan: Plan, period_start: date) -> date:
    """The first plan period whose aggregate recomputing ``period_start`` reads.

    The ``eligibility_persists_periods`` periods before it (Wisconsin AB 269), and the
    year's other periods only when the plan has an annual cap (DOMAIN.md "Annual cap").
    """
    before = period_starts_before(plan.period, period_start, plan.eligibility_persists_periods)
    year_start = period_start.replace(month=1, day=1) if plan.annual_cap_minor is not None else period_start
    return min([year_start, *before])


def recompute(terms: PlanTerms, plan: Plan, agg: _Aggregate, periods: dict[date, _Aggregate]) -> int:
    """Recompute ``agg``'s period from its totals; returns the amount to post now.

    Eligibility looks at whether the ``eligibility_persists_periods`` periods before
    reached the threshold themselves (Wisconsin AB 269); the annual cap counts what the
    other periods of the same calendar year posted (DOMAIN.md "Annual cap").
    """
    before = period_starts_before(plan.period, agg.period_start, plan.eligibility_persists_periods)
    earlier = [periods[s].reached_threshold if s in periods else False for s in before]
    agg.reached_threshold = reaches_threshold(terms, agg.totals)
    agg.eligible = is_eligible(terms, agg.totals, earlier)
    owed_elsewhere = 0 if plan.annual_cap_minor is None else sum(
        a.posted_minor for s, a in periods.items() if s.year == agg.period_start.year and s != agg.period_start)
    target = period_target_minor(terms, agg.totals, agg.eligible, owed_elsewhere)
    agg.dirty = True
    if target < agg.posted_minor:
        # Only possible when an earlier period's report was reversed after this period
        # posted on the eligibility it gave: what was posted stays (a period's total only
        # goes down through its own reversal), and nothing more is owed.
        return 0
    amount = amount_to_post(target, agg.posted_minor)
    agg.posted_minor = target
    return amount


def write_aggregates(session: Session, aggregates: list[_Aggregate]) -> None:
    """Insert new period aggregates and update changed ones, in two bulk statements."""
    insert_rows(session, AGGREGATES, [a.row() for a in aggregates if a.seq is None])
    changed = ("gross_earnings_minor", "tips_minor", "engaged_minutes", "jobs", "reached_threshold", "eligible",
               "posted_minor")
    update_rows(session, AGGREGATES, "seq", [{"seq": a.seq, **{c: a.row()[c] for c in changed}}
                                             for a in aggregates if a.seq is not None])


def posting(rows: Sequence[Any], kind: str = "contribution", direction: int = 1) -> NewTransaction:
    """One ledger transaction for contributions of one remittance: the receivable debited,
    the members' pending buckets credited (``direction`` -1 reverses it, for a void).

    Amounts moving the same account are summed, so a 10,000-line batch writes one entry
    per account it touches. ``rows`` are contribution rows (dicts) or objects.
    """
    values = [row if isinstance(row, dict) else {name: getattr(row, name) for name in _POSTING_FIELDS}
              for row in rows]
    first = values[0]
    currency = first["currency"]
    receivables: dict[AccountRef, int] = {}
    pending: dict[tuple[str, str], int] = {}
    for row in values:
        payer = payer_receivable(row["contributor_id"], row["member_id"], currency)
        receivables[payer] = receivables.get(payer, 0) + row["amount_minor"]
        for bucket in BUCKETS:
            part = row[f"allocation_{bucket}_minor"]
            if part:
                key = (row["member_id"], bucket)
                pending[key] = pending.get(key, 0) + part
    legs = [Leg(payer, direction * amount) for payer, amount in receivables.items() if amount]
    legs += [Leg(member_account(member, bucket, "pending", currency), -direction * amount)
             for (member, bucket), amount in pending.items()]
    return NewTransaction(
        kind=kind, currency=currency, legs=legs, effective_at=first["created_at"],
        contribution_id=first["id"] if len(values) == 1 else None, remittance_id=first["remittance_id"],
        contributor_id=first["contributor_id"],
    )


_POSTING_FIELDS = ("id", "currency", "contributor_id", "member_id", "remittance_id", "amount_minor", "created_at",
                   *(f"allocation_{b}_minor" for b in BUCKETS))


# -- reversal ----------------------------------------------------------------------------


@dataclass
class ReversalResult:
    """The contributions voided and the one replacement posted (None when it owes 0)."""

    reversed: list[str]
    replacement: Contribution | None


def reverse_contribution(db: Database, principal: Principal, contribution_id: str, reason: str,
                         clock: Settings) -> ReversalResult:
    """Undo one report (DOMAIN.md "Reversal").

    While none of the money of that member, plan and period is available, every
    contribution of the period is voided (exact bucket amounts out of pending), the period
    is recomputed without the report, and what it now owes is posted as one replacement
    contribution in the report's remittance. Raises NotFoundError (out of scope),
    ConflictError (already reversed, not a report, or money of the period available).
    """

    def run(session: Session) -> ReversalResult:
        target = session.scalar(select(Contribution).where(col(Contribution.id) == contribution_id))
        if target is None or target.contributor_id is None:
            raise NotFoundError("contribution not found")
        principal.require_contributor(target.contributor_id, "contribution")
        if target.kind != "report" or target.plan_id is None or target.plan_period_start is None:
            raise ConflictError("only an earnings report can be reversed")
        session.execute(
            select(col(MemberPlan.seq))
            .where(col(MemberPlan.member_id) == target.member_id, col(MemberPlan.plan_id) == target.plan_id)
            .with_for_update()
        ).all()
        session.refresh(target)
        if target.reversed_at is not None:
            raise ConflictError("this report was already reversed")
        # The anchor stops new contributions joining the period, but a funding (which holds
        # only the remittance lock) may still make one available: lock the period's
        # remittances first, then read the statuses again before deciding.
        remittances = sorted({c.remittance_id for c in _period_contributions(session, target)}
                             | {target.remittance_id})
        locked = {rid: lock_remittance(session, rid) for rid in remittances}
        period = _period_contributions(session, target)
        if any(c.status == "available" and c.amount_minor > 0 for c in period):
            raise ConflictError("money of this period is already available; it cannot be reversed")
        return _void_and_replace(session, target, period, reason, clock, locked)

    return db.transaction(run)


def _period_contributions(session: Session, target: Contribution) -> list[Contribution]:
    """The live (not void) contributions of ``target``'s member, plan and period, re-read."""
    return list(session.scalars(
        select(Contribution).where(
            col(Contribution.member_id) == target.member_id, col(Contribution.plan_id) == target.plan_id,
            col(Contribution.plan_period_start) == target.plan_period_start, col(Contribution.status) != "void",
        ).order_by(col(Contribution.seq)).execution_options(populate_existing=True)
    ))


def _void_and_replace(session: Session, target: Contribution, period: list[Contribution], reason: str,
                      clock: Settings, locked: dict[str, Remittance]) -> ReversalResult:
    voids = [_void_posting(c, clock.now) for c in period if c.amount_minor > 0]
    for c in period:
        c.status, c.voided_at = "void", clock.now
        locked[c.remittance_id].amount_due_minor -= c.amount_minor
    target.reversed_at, target.reversal_reason = clock.now, reason
    post(session, voids, clock.now)

    plan = session.scalar(select(Plan).where(col(Plan.id) == target.plan_id))
    assert plan is not None and target.plan_period_start is not None
    rows = session.execute(select(AGGREGATES).where(
        AGGREGATES.c.member_id == target.member_id, AGGREGATES.c.plan_id == plan.id,
        AGGREGATES.c.period_start >= earliest_period_needed(plan, target.plan_period_start),
    )).all()
    periods = {r.period_start: _Aggregate.from_row(r) for r in rows}
    agg = periods[target.plan_period_start]
    agg.totals = agg.totals.minus(PeriodTotals(target.gross_earnings_minor, target.tips_minor,
                                               target.engaged_minutes, target.jobs))
    agg.posted_minor = 0
    amount = recompute(plan_terms(plan), plan, agg, periods)
    write_aggregates(session, [agg])
    replacement = None
    if amount > 0:
        replacement = _replacement(session, target, plan, agg, amount, clock)
        locked[target.remittance_id].amount_due_minor += amount
        session.flush()
        post(session, [posting([replacement])], clock.now)
    session.flush()
    # A voided contribution may have been the one that stopped its remittance's funding:
    # money waiting in suspense now pays what stood behind it (DOMAIN.md: whole, in order).
    for remittance_id in sorted(locked):
        if suspense_balance(session, locked[remittance_id]) > 0:
            fund_from_suspense(session, locked[remittance_id], clock.now)
    if replacement is not None:
        session.refresh(replacement)
    return ReversalResult([c.id for c in period], replacement)


def _void_posting(c: Contribution, now: datetime) -> NewTransaction:
    txn = posting([c], kind="contribution_void", direction=-1)
    txn.effective_at = now
    return txn


def _replacement(session: Session, target: Contribution, plan: Plan, agg: _Aggregate, amount: int,
                 clock: Settings) -> Contribution:
    member = session.scalar(select(Member).where(col(Member.id) == target.member_id))
    election = member_allocation(member) if member is not None else None
    allocation = election if plan.allocation_mode == "member_election" and election else plan_allocation(plan)
    split = split_largest_remainder(amount, allocation)
    row = Contribution(
        id=new_id("ctb"), kind="replacement", contributor_id=target.contributor_id, member_id=target.member_id,
        worker_ref=target.worker_ref, plan_id=plan.id, remittance_id=target.remittance_id,
        currency=target.currency, period_start=agg.period_start, period_end=agg.period_end,
        plan_period_start=agg.period_start, amount_minor=amount,
        allocation_healthcare_minor=split["healthcare"], allocation_retirement_minor=split["retirement"],
        allocation_training_minor=split["training"], eligible=agg.eligible, status="pending",
        created_at=clock.now,
    )
    session.add(row)
    return row


# -- reading ------------------------------------------------------------------------------


@dataclass
class ContributionFilters:
    """Filters of ``GET /v1/contributions`` (API.md)."""

    external_id: str | None = None
    worker_ref: str | None = None
    remittance_id: str | None = None
    period_start: date | None = None
    member_id: str | None = None


def get_contribution(db: Database, principal: Principal, contribution_id: str) -> Contribution:
    """One contribution in the caller's scope; else NotFoundError."""

    def run(session: Session) -> Contribution:
        row = fetch(session, Contribution, contribution_id, "contribution")
        principal.require_contributor(row.contributor_id, "contribution")
        return row

    return db.read(run)


def list_contributions(db: Database, principal: Principal, filters: ContributionFilters, limit: int,
                       cursor: str | None) -> Page[Contribution]:
    """Contributions in scope (a platform: its own), newest first, filtered."""
    query = select(Contribution)
    if principal.role == "platform":
        query = query.where(col(Contribution.contributor_id) == principal.contributor_id)
    for name in ("external_id", "worker_ref", "remittance_id", "period_start", "member_id"):
        value = getattr(filters, name)
        if value is not None:
            query = query.where(getattr(Contribution, name) == value)
    return db.read(lambda s: paginate(s, query, Contribution.seq, limit, cursor))


def period_basis_earnings(session: Session, contributions: list[Contribution]) -> dict[str, int]:
    """For each contribution id, its plan period's basis earnings (gross, or gross - tips)."""
    keys = {(c.member_id, c.plan_id, c.plan_period_start) for c in contributions if c.plan_id}
    if not keys:
        return {}
    rows = session.execute(
        select(AGGREGATES.c.member_id, AGGREGATES.c.plan_id, AGGREGATES.c.period_start,
               AGGREGATES.c.gross_earnings_minor, AGGREGATES.c.tips_minor, col(Plan.earnings_basis))
        .join(Plan, col(Plan.id) == AGGREGATES.c.plan_id)
        .where(tuple_(AGGREGATES.c.member_id, AGGREGATES.c.plan_id, AGGREGATES.c.period_start).in_(list(keys)))
    ).all()
    earnings = {(r.member_id, r.plan_id, r.period_start):
                r.gross_earnings_minor - (r.tips_minor if r.earnings_basis == "pre_tip" else 0) for r in rows}
    return {c.id: earnings.get((c.member_id, c.plan_id, c.plan_period_start), 0) for c in contributions}


def list_member_contributions(db: Database, principal: Principal, member_id: str, limit: int,
                              cursor: str | None) -> tuple[Page[Contribution], dict[str, int]]:
    """A member's contributions newest first, with each one's plan-period basis earnings."""

    def run(session: Session) -> tuple[Page[Contribution], dict[str, int]]:
        load_member(session, principal, member_id)
        result = paginate(session, select(Contribution).where(col(Contribution.member_id) == member_id),
                          Contribution.seq, limit, cursor)
        return result, period_basis_earnings(session, result.data)

    return db.read(run)
