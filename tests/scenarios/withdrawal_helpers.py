"""Builders for the withdrawal and statement scenarios (over the HTTP API).

Money reaches a member's ``available`` bucket the way it does in production: a platform
reports earnings (here under a plan paying 100% of earnings into one bucket, so the amount
lands whole where the test wants it), the batch is funded by a bank transfer recorded by an
administrator. Only ``cash_minor`` reads the database: the fund's bank account, which no
endpoint shows.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import requests
from flask import Flask
from sqlalchemy import select
from sqlmodel import col

from ledger.db import Database
from ledger.money import BUCKETS
from ledger.tables import Account
from tests.conftest import Caller, Clock
from tests.scenarios.helpers import get, line, make_plan, platform, remit

#: the plan ids of a "bank" platform: 100% of earnings into one bucket
ALL_INTO = {bucket: f"all-{bucket}" for bucket in BUCKETS}
PURPOSE_OF = {"healthcare": "premium", "retirement": "ira_transfer", "training": "tuition"}


def iso(instant: datetime) -> str:
    """An aware instant as the API writes it (UTC, ``Z``)."""
    return instant.astimezone(UTC).isoformat().replace("+00:00", "Z")


def bank_platform(app: Flask, admin: Caller, contributor_id: str = "bank") -> Caller:
    """A platform whose plans ``all-healthcare``, ``all-retirement``, ``all-training`` pay 100%
    of pre-tip earnings into that one bucket (monthly, no threshold); its platform key."""
    caller = platform(app, admin, contributor_id)
    for bucket, plan_id in ALL_INTO.items():
        make_plan(admin, contributor_id, plan_id, rate_bps=10_000,
                  allocation={b: 10_000 if b == bucket else 0 for b in BUCKETS})
    return caller


def new_member(admin: Caller, birth_year: int | None = None, hsa_coverage: str | None = None) -> str:
    """Open a member account through the API; returns its id."""
    body: dict[str, Any] = {"display_name": "Test Member"}
    if birth_year is not None:
        body["birth_year"] = birth_year
    if hsa_coverage is not None:
        body["hsa_coverage"] = hsa_coverage
    response = admin.post("/v1/members", body)
    assert response.status_code == 201, response.json
    member_id: str = response.json["id"]
    return member_id


def link(admin: Caller, contributor_id: str, worker_ref: str, member_id: str) -> None:
    """Enroll ``worker_ref`` of ``contributor_id`` as ``member_id`` (the admin form)."""
    response = admin.post("/v1/enrollments", {"contributor_id": contributor_id, "worker_ref": worker_ref,
                                               "member_id": member_id})
    assert response.status_code in (200, 201), response.json
    assert response.json["member_id"] == member_id


def record_funding(admin: Caller, remittance_id: str, amount_minor: int, received_at: datetime) -> dict[str, Any]:
    """A bank transfer received now (``received_at`` must not be in the future); the funding."""
    response = admin.post(f"/v1/remittances/{remittance_id}/fundings", {
        "amount_minor": amount_minor, "currency": "USD", "reference": f"wire-{uuid.uuid4().hex[:12]}",
        "received_at": iso(received_at)})
    assert response.status_code == 201, response.json
    result: dict[str, Any] = response.json
    return result


def deposit(admin: Caller, bank: Caller, clock: Clock, worker_ref: str, bucket: str, amount_minor: int,
            day: str | None = None) -> None:
    """Make ``amount_minor`` available in ``bucket`` of ``worker_ref``'s member at ``clock.now``:
    a report of that much earnings under the bucket's 100% plan for ``day`` (default: today
    in UTC), in its own batch, funded whole."""
    day = day or clock.now.astimezone(UTC).date().isoformat()
    batch = f"dep-{uuid.uuid4().hex[:12]}"
    rem = remit(bank, batch, [line(f"{batch}:0", worker_ref, ALL_INTO[bucket], amount_minor,
                                   period_start=day, period_end=day)])
    assert rem["amount_due_minor"] == amount_minor, rem
    funding = record_funding(admin, rem["id"], amount_minor, clock.now)
    assert funding["applied_minor"] == amount_minor, funding


def worker_ref_of(member_id: str) -> str:
    """The bank platform's worker_ref for a member (``mem_x`` -> ``w-mem-x``)."""
    return f"w-{member_id.replace('_', '-')}"


def funded_member(admin: Caller, bank: Caller, clock: Clock, bucket_name: str, amount_minor: int,
                  birth_year: int | None = None, hsa_coverage: str | None = None, day: str | None = None) -> str:
    """A new member, enrolled with the "bank" platform, with ``amount_minor`` available in
    ``bucket_name`` (nothing when 0); returns the member id."""
    member_id = new_member(admin, birth_year, hsa_coverage)
    link(admin, "bank", worker_ref_of(member_id), member_id)
    if amount_minor:
        deposit(admin, bank, clock, worker_ref_of(member_id), bucket_name, amount_minor, day)
    return member_id


def balances(caller: Caller, member_id: str, as_of: str | None = None) -> dict[str, dict[str, int]]:
    """``{bucket: {pending_minor, available_minor, held_minor}}`` as the caller reads it."""
    path = f"/v1/members/{member_id}/balances" + (f"?as_of={as_of}" if as_of else "")
    result: dict[str, dict[str, int]] = get(caller, path)["buckets"]
    return result


def bucket(caller: Caller, member_id: str, name: str) -> tuple[int, int, int]:
    """One bucket's (available, held, pending)."""
    b = balances(caller, member_id)[name]
    return (b["available_minor"], b["held_minor"], b["pending_minor"])


def withdrawal_body(bucket_name: str, amount_minor: Any, purpose: str | None = None, payee: str = "Acme Custodian",
                    **extra: Any) -> dict[str, Any]:
    """A withdrawal request (purpose: the bucket's first unless given)."""
    return {"bucket": bucket_name, "amount_minor": amount_minor, "currency": "USD",
            "purpose": purpose or PURPOSE_OF[bucket_name], "payee": payee, **extra}


def withdraw(caller: Caller, member_id: str, bucket_name: str, amount_minor: Any, purpose: str | None = None,
             **extra: Any) -> Any:
    """POST a withdrawal; the response (status not checked)."""
    return caller.post(f"/v1/members/{member_id}/withdrawals",
                       withdrawal_body(bucket_name, amount_minor, purpose, **extra))


def held(caller: Caller, member_id: str, bucket_name: str, amount_minor: int, purpose: str | None = None) -> dict[
        str, Any]:
    """POST a withdrawal that must succeed (201, held); the withdrawal."""
    response = withdraw(caller, member_id, bucket_name, amount_minor, purpose)
    assert response.status_code == 201, response.json
    assert response.json["status"] == "held"
    result: dict[str, Any] = response.json
    return result


def act(caller: Caller, withdrawal_id: str, action: str, status: int = 200) -> dict[str, Any]:
    """``complete`` or ``cancel`` a withdrawal; asserts the status, returns the body."""
    response = caller.post(f"/v1/withdrawals/{withdrawal_id}/{action}")
    assert response.status_code == status, response.json
    result: dict[str, Any] = response.json
    return result


def set_limit(admin: Caller, bucket_name: str, purpose: str, tax_year: int, limit_minor: int,
              catch_up: list[tuple[int, int]] | None = None, coverage: str | None = None,
              status: int = 201) -> dict[str, Any]:
    """POST a yearly limit (``catch_up`` as (min_age, extra_minor) pairs); asserts the status."""
    body: dict[str, Any] = {"bucket": bucket_name, "purpose": purpose, "tax_year": tax_year,
                            "limit_minor": limit_minor,
                            "catch_up": [{"min_age": age, "extra_minor": extra} for age, extra in catch_up or []]}
    if coverage is not None:
        body["coverage"] = coverage
    response = admin.post("/v1/withdrawal-limits", body)
    assert response.status_code == status, response.json
    result: dict[str, Any] = response.json
    return result


def withdrawals_of(caller: Caller, member_id: str) -> list[dict[str, Any]]:
    """Every withdrawal of the member (one page of up to 500), newest first."""
    body = get(caller, f"/v1/members/{member_id}/withdrawals?limit=500")
    assert body["has_more"] is False
    rows: list[dict[str, Any]] = body["data"]
    return rows


def entries_of(caller: Caller, member_id: str) -> list[dict[str, Any]]:
    """Every entry on the member's buckets (one page of up to 500), newest first."""
    body = get(caller, f"/v1/members/{member_id}/entries?limit=500")
    assert body["has_more"] is False
    rows: list[dict[str, Any]] = body["data"]
    return rows


def cash_minor(database: Database, where: str = "bank", currency: str = "USD") -> int:
    """The fund's cash account ``cash:{where}`` (read from the database: no endpoint shows it)."""
    value = database.read(lambda s: s.scalar(select(col(Account.balance_minor)).where(
        col(Account.name) == f"cash:{where}", col(Account.currency) == currency)))
    return int(value or 0)


def post_json(session: requests.Session, url: str, key: str, body: dict[str, Any]) -> requests.Response:
    """A real HTTP POST with a key."""
    return session.post(url, json=body, timeout=120, headers={"Authorization": f"Bearer {key}"})
