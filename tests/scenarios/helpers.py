"""Builders and checks shared by the scenario tests (over the HTTP API, admin/platform keys).

Everything here goes through the API except ``suspense_minor``, which reads the one
number the API does not show: the money waiting in a remittance's suspense account.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Flask
from sqlalchemy import select

from ledger.db import Database
from ledger.tables import Account
from tests.conftest import Caller, new_caller

SPLIT_50_30_20 = {"healthcare": 5000, "retirement": 3000, "training": 2000}
RECEIVED_AT = "2026-07-15T09:00:00Z"


def at(text: str) -> datetime:
    """An aware UTC instant from ``YYYY-MM-DDTHH:MM`` (for moving ``clock.now``)."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def make_contributor(admin: Caller, contributor_id: str, currency: str = "USD", kind: str = "platform") -> None:
    """Create a contributor through the API."""
    response = admin.post("/v1/contributors", {"id": contributor_id, "name": contributor_id.title(),
                                               "kind": kind, "currency": currency})
    assert response.status_code == 201, response.json


def make_plan(admin: Caller, contributor_id: str, plan_id: str, **terms: Any) -> dict[str, Any]:
    """Create a plan (4% of pre-tip earnings, monthly, fixed 50/30/20 unless ``terms`` say otherwise).

    A term given as None is left out of the body (``rate_bps=None`` for a plan without a rate).
    """
    body = {"id": plan_id, "basis": "percent_of_earnings", "rate_bps": 400, "allocation_mode": "fixed",
            "allocation": SPLIT_50_30_20, "effective_from": "2026-01-01", **terms}
    body = {name: value for name, value in body.items() if value is not None}
    response = admin.post(f"/v1/contributors/{contributor_id}/plans", body)
    assert response.status_code == 201, response.json
    plan: dict[str, Any] = response.json
    return plan


def platform(app: Flask, admin: Caller, contributor_id: str, currency: str = "USD", **plans: dict[str, Any]) -> Caller:
    """A platform contributor with ``plans`` (id -> terms) and its platform key."""
    make_contributor(admin, contributor_id, currency)
    for plan_id, terms in plans.items():
        make_plan(admin, contributor_id, plan_id, **terms)
    return new_caller(app, admin, "platform", contributor_id=contributor_id)


def enroll(caller: Caller, worker_ref: str, link_code: str | None = None) -> str:
    """Enroll a worker with the caller's platform; returns the member id."""
    body = {"worker_ref": worker_ref, **({"link_code": link_code} if link_code else {})}
    response = caller.post("/v1/enrollments", body)
    assert response.status_code in (200, 201), response.json
    member_id: str = response.json["member_id"]
    return member_id


def line(external_id: str, worker_ref: str, plan_id: str, gross: int, period_start: str = "2026-04-01",
         period_end: str = "2026-04-30", currency: str = "USD", **extra: Any) -> dict[str, Any]:
    """One earnings report (a contribution body, or a remittance line)."""
    return {"external_id": external_id, "worker_ref": worker_ref, "plan_id": plan_id,
            "period_start": period_start, "period_end": period_end, "currency": currency,
            "gross_earnings_minor": gross, **extra}


def contribute(caller: Caller, body: dict[str, Any], status: int = 201) -> dict[str, Any]:
    """POST one earnings report; asserts the status, returns the contribution."""
    response = caller.post("/v1/contributions", body)
    assert response.status_code == status, response.json
    result: dict[str, Any] = response.json
    return result


def remit(caller: Caller, external_id: str, lines: list[dict[str, Any]], status: int = 201) -> dict[str, Any]:
    """POST a remittance batch; asserts the status, returns the remittance."""
    response = caller.post("/v1/remittances", {"external_id": external_id, "currency": "USD", "lines": lines})
    assert response.status_code == status, response.json
    result: dict[str, Any] = response.json
    return result


def fund(admin: Caller, remittance_id: str, amount_minor: int, reference: str, currency: str = "USD",
         status: int = 201) -> dict[str, Any]:
    """Record a bank transfer for a remittance; asserts the status, returns the funding (or error)."""
    response = admin.post(f"/v1/remittances/{remittance_id}/fundings", {
        "amount_minor": amount_minor, "currency": currency, "reference": reference, "received_at": RECEIVED_AT})
    assert response.status_code == status, response.json
    result: dict[str, Any] = response.json
    return result


def get(caller: Caller, path: str) -> dict[str, Any]:
    """GET ``path``; asserts 200, returns the body."""
    response = caller.get(path)
    assert response.status_code == 200, response.json
    result: dict[str, Any] = response.json
    return result


def remittance(caller: Caller, remittance_id: str) -> dict[str, Any]:
    """The remittance as the caller reads it now."""
    return get(caller, f"/v1/remittances/{remittance_id}")


def contribution(caller: Caller, contribution_id: str) -> dict[str, Any]:
    """The contribution as the caller reads it now."""
    return get(caller, f"/v1/contributions/{contribution_id}")


def money(rem: dict[str, Any]) -> tuple[str, int, int, int, int]:
    """A remittance's (status, due, funded, short, credit)."""
    return (rem["status"], rem["amount_due_minor"], rem["amount_funded_minor"], rem["short_minor"],
            rem["credit_minor"])


def buckets(admin: Caller, member_id: str, state: str = "pending") -> tuple[int, int, int]:
    """A member's (healthcare, retirement, training) balances in ``state`` (pending/available/held)."""
    body = get(admin, f"/v1/members/{member_id}/balances")["buckets"]
    return (body["healthcare"][f"{state}_minor"], body["retirement"][f"{state}_minor"],
            body["training"][f"{state}_minor"])


def totals(admin: Caller, member_id: str) -> dict[str, int]:
    """A member's totals ``{pending_minor, available_minor, held_minor}``."""
    result: dict[str, int] = get(admin, f"/v1/members/{member_id}/balances")["total"]
    return result


def split(c: dict[str, Any]) -> tuple[int, int, int]:
    """A contribution's (healthcare, retirement, training) allocations."""
    a = c["allocations"]
    return (a["healthcare"], a["retirement"], a["training"])


def suspense_minor(database: Database, remittance_id: str, currency: str = "USD") -> int:
    """Money waiting in a remittance's suspense account (read from the database)."""
    value = database.read(lambda s: s.scalar(select(Account.balance_minor).where(
        Account.name == f"suspense:{remittance_id}", Account.currency == currency)))
    return int(value or 0)


def assert_books_balance(admin: Caller) -> None:
    """``POST /v1/ledger/verify`` is ok on every check, and the trial balance differs by 0."""
    verify = admin.post("/v1/ledger/verify")
    assert verify.status_code == 200, verify.json
    assert verify.json["ok"] is True, [c for c in verify.json["checks"] if not c["ok"]]
    trial = get(admin, "/v1/ledger/trial-balance")
    assert all(row["difference_minor"] == 0 for row in trial["currencies"]), trial
    assert all(row["debits_minor"] == row["credits_minor"] for row in trial["currencies"]), trial
