"""Contributors and their plans (DOMAIN.md "Contributions": plan bases and rules)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlmodel import col

from ledger.db import Database, fetch
from ledger.errors import ConflictError, NotFoundError, ValidationError
from ledger.money import BUCKETS, exponent
from ledger.pagination import Page, paginate
from ledger.principal import Principal
from ledger.rules import PlanTerms, Proration, Tier, validate_plan_terms
from ledger.tables import Contributor, Plan


def create_contributor(db: Database, fields: dict[str, Any], now: datetime) -> Contributor:
    """Create a contributor ``{id, name, kind, currency}``; an id in use raises ConflictError."""
    exponent(fields["currency"])

    def run(session: Session) -> Contributor:
        if session.scalar(select(col(Contributor.seq)).where(col(Contributor.id) == fields["id"])) is not None:
            raise ConflictError("a contributor with this id exists", {"id": ["Already in use."]})
        row = Contributor(**fields, created_at=now)
        session.add(row)
        return row

    return db.transaction(run)


def get_contributor(db: Database, principal: Principal, contributor_id: str) -> Contributor:
    """One contributor in the caller's scope; else NotFoundError."""
    principal.require_contributor(contributor_id, "contributor")

    def run(session: Session) -> Contributor:
        row = fetch(session, Contributor, contributor_id, "contributor")
        return row

    return db.read(run)


def list_contributors(db: Database, principal: Principal, limit: int, cursor: str | None) -> Page[Contributor]:
    """Contributors in the caller's scope (a platform sees only its own), newest first."""
    query = select(Contributor)
    if not principal.is_admin:
        query = query.where(col(Contributor.id) == principal.contributor_id)
    return db.read(lambda s: paginate(s, query, Contributor.seq, limit, cursor))


def terms_from_fields(fields: dict[str, Any]) -> PlanTerms:
    """Plan terms from the API's plan fields (``proration`` as the contract's object)."""
    proration = None
    raw = fields.get("proration")
    if raw is not None:
        tiers = tuple(Tier(t["min_minutes"], t["percent_bps"]) for t in raw.get("tiers") or ())
        proration = Proration(raw["method"], raw.get("full_time_minutes"), tiers)
    return PlanTerms(
        basis=fields["basis"], period=fields.get("period", "month"),
        rate_bps=fields.get("rate_bps"), amount_minor=fields.get("amount_minor"),
        earnings_basis=fields.get("earnings_basis", "pre_tip"),
        min_earnings_minor=fields.get("min_earnings_minor", 0),
        eligibility_persists_periods=fields.get("eligibility_persists_periods", 0),
        annual_cap_minor=fields.get("annual_cap_minor"), proration=proration,
    )


def plan_terms(plan: Plan) -> PlanTerms:
    """The pure terms of a stored plan, for ``ledger.rules``."""
    return terms_from_fields(plan_fields(plan))


def plan_fields(plan: Plan) -> dict[str, Any]:
    """A stored plan in the contract's shape (API.md "Plan")."""
    return {
        "id": plan.id, "contributor_id": plan.contributor_id, "basis": plan.basis,
        "rate_bps": plan.rate_bps, "amount_minor": plan.amount_minor,
        "earnings_basis": plan.earnings_basis, "period": plan.period,
        "min_earnings_minor": plan.min_earnings_minor,
        "eligibility_persists_periods": plan.eligibility_persists_periods,
        "annual_cap_minor": plan.annual_cap_minor,
        "proration": json.loads(plan.proration_json) if plan.proration_json else None,
        "paid_by": plan.paid_by, "allocation_mode": plan.allocation_mode,
        "allocation": plan_allocation(plan), "effective_from": plan.effective_from,
        "created_at": plan.created_at,
    }


def plan_allocation(plan: Plan) -> dict[str, int]:
    """The plan's fixed allocation in basis points per bucket."""
    return {
        "healthcare": plan.allocation_healthcare_bps,
        "retirement": plan.allocation_retirement_bps,
        "training": plan.allocation_training_bps,
    }


def check_allocation(allocation: dict[str, int], field: str = "allocation") -> None:
    """Raise ValidationError unless the three buckets' basis points sum to 10,000."""
    if sum(allocation[b] for b in BUCKETS) != 10_000:
        raise ValidationError("allocation must sum to 10000 basis points",
                              {field: ["Basis points must sum to 10000."]})


def create_plan(db: Database, contributor_id: str, fields: dict[str, Any], now: datetime) -> Plan:
    """Create a plan for a contributor. Plan ids are unique across contributors.

    Raises NotFoundError (unknown contributor), ValidationError (inconsistent terms,
    see ``rules.validate_plan_terms``; ``paid_by: schedule`` on anything but
    ``flat_per_period``), ConflictError (id in use). Plans are immutable once created.
    """
    validate_plan_terms(terms_from_fields(fields))
    check_allocation(fields["allocation"])
    if fields.get("paid_by", "reports") == "schedule" and fields["basis"] != "flat_per_period":
        raise ValidationError("only flat_per_period plans are paid on a schedule",
                              {"paid_by": ["Only flat_per_period plans may be paid by schedule."]})

    def run(session: Session) -> Plan:
        if session.scalar(select(col(Contributor.seq)).where(col(Contributor.id) == contributor_id)) is None:
            raise NotFoundError("contributor not found")
        if session.scalar(select(col(Plan.seq)).where(col(Plan.id) == fields["id"])) is not None:
            raise ConflictError("a plan with this id exists", {"id": ["Already in use."]})
        allocation = fields["allocation"]
        row = Plan(
            id=fields["id"], contributor_id=contributor_id, basis=fields["basis"],
            rate_bps=fields.get("rate_bps"), amount_minor=fields.get("amount_minor"),
            earnings_basis=fields.get("earnings_basis", "pre_tip"), period=fields.get("period", "month"),
            min_earnings_minor=fields.get("min_earnings_minor", 0),
            eligibility_persists_periods=fields.get("eligibility_persists_periods", 0),
            annual_cap_minor=fields.get("annual_cap_minor"),
            proration_json=json.dumps(fields["proration"], sort_keys=True) if fields.get("proration") else None,
            paid_by=fields.get("paid_by", "reports"),
            allocation_mode=fields.get("allocation_mode", "member_election"),
            allocation_healthcare_bps=allocation["healthcare"],
            allocation_retirement_bps=allocation["retirement"],
            allocation_training_bps=allocation["training"],
            effective_from=fields["effective_from"], created_at=now,
        )
        session.add(row)
        return row

    return db.transaction(run)


def get_plan(db: Database, principal: Principal, plan_id: str) -> Plan:
    """One plan in the caller's scope; else NotFoundError."""

    def run(session: Session) -> Plan:
        row = fetch(session, Plan, plan_id, "plan")
        principal.require_contributor(row.contributor_id, "plan")
        return row

    return db.read(run)


def list_plans(db: Database, principal: Principal, contributor_id: str, limit: int, cursor: str | None) -> Page[Plan]:
    """A contributor's plans, newest first; NotFoundError outside the caller's scope."""
    principal.require_contributor(contributor_id, "contributor")

    def run(session: Session) -> Page[Plan]:
        if session.scalar(select(col(Contributor.seq)).where(col(Contributor.id) == contributor_id)) is None:
            raise NotFoundError("contributor not found")
        return paginate(session, select(Plan).where(col(Plan.contributor_id) == contributor_id), Plan.seq, limit,
                        cursor)

    return db.read(run)
