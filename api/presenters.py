"""Rows to the contract's shapes, where a field is derived (status, allocations, totals)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from ledger.money import BUCKETS
from ledger.pagination import Page
from ledger.services.members import member_allocation
from ledger.services.remittances import remittance_status
from ledger.tables import Contribution, Member, Remittance


def page(result: Page[Any], present: Any = None) -> dict[str, Any]:
    """A list page ``{data, has_more, next_cursor}``."""
    data = [present(item) for item in result.data] if present else result.data
    return {"data": data, "has_more": result.has_more, "next_cursor": result.next_cursor}


def contribution(c: Contribution) -> dict[str, Any]:
    """A contribution with its ``allocations`` per bucket."""
    fields = {name: getattr(c, name, None) for name in (
        "id", "kind", "external_id", "contributor_id", "member_id", "worker_ref", "plan_id", "remittance_id",
        "currency", "period_start", "period_end", "gross_earnings_minor", "tips_minor", "engaged_minutes", "jobs",
        "amount_minor", "eligible", "status", "created_at", "available_at", "reversed_at")}
    fields["allocations"] = {b: getattr(c, f"allocation_{b}_minor") for b in BUCKETS}
    return fields


def remittance(r: Remittance, today: date) -> dict[str, Any]:
    """A remittance with its status and short/credit amounts derived now."""
    return {
        "id": r.id, "external_id": r.external_id, "contributor_id": r.contributor_id, "member_id": r.member_id,
        "currency": r.currency, "status": remittance_status(r, today), "line_count": r.line_count,
        "amount_due_minor": r.amount_due_minor, "amount_funded_minor": r.amount_funded_minor,
        "short_minor": max(0, r.amount_due_minor - r.amount_funded_minor),
        "credit_minor": max(0, r.amount_funded_minor - r.amount_due_minor),
        "reopened_minor": r.reopened_minor, "due_date": r.due_date, "created_at": r.created_at,
    }


def member(m: Member) -> dict[str, Any]:
    """A member with its allocation election (or null)."""
    return {"id": m.id, "display_name": m.display_name, "allocation": member_allocation(m),
            "birth_year": m.birth_year, "hsa_coverage": m.hsa_coverage, "created_at": m.created_at}


def balances(member_id: str, currency: str, as_of: datetime, buckets: dict[str, dict[str, int]]) -> dict[str, Any]:
    """``{member_id, currency, as_of, buckets, total}`` with ``*_minor`` names."""
    shaped = {b: {f"{s}_minor": v for s, v in states.items()} for b, states in buckets.items()}
    total = {f"{s}_minor": sum(buckets[b][s] for b in buckets) for s in ("pending", "available", "held")}
    return {"member_id": member_id, "currency": currency, "as_of": as_of, "buckets": shaped, "total": total}
