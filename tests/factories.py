"""Small builders used by the API tests: a contributor with a plan, enrolled workers."""

from __future__ import annotations

from typing import Any

from flask import Flask

from tests.conftest import Caller, new_caller

SPLIT_50_30_20 = {"healthcare": 5000, "retirement": 3000, "training": 2000}


def make_platform(app: Flask, admin: Caller, contributor_id: str = "dash", currency: str = "USD",
                  **plan: Any) -> Caller:
    """Create a platform contributor, one plan (``plan`` overrides), and its platform key."""
    response = admin.post("/v1/contributors", {"id": contributor_id, "name": contributor_id.title(),
                                               "kind": "platform", "currency": currency})
    assert response.status_code == 201, response.json
    body = {"id": f"{contributor_id}-plan", "basis": "percent_of_earnings", "rate_bps": 400,
            "allocation_mode": "fixed", "allocation": SPLIT_50_30_20, "effective_from": "2026-01-01", **plan}
    response = admin.post(f"/v1/contributors/{contributor_id}/plans", body)
    assert response.status_code == 201, response.json
    return new_caller(app, admin, "platform", contributor_id=contributor_id)


def enroll(platform: Caller, worker_ref: str, link_code: str | None = None) -> str:
    """Enroll a worker with a platform; returns the member id."""
    body = {"worker_ref": worker_ref, **({"link_code": link_code} if link_code else {})}
    response = platform.post("/v1/enrollments", body)
    assert response.status_code in (200, 201), response.json
    member_id: str = response.json["member_id"]
    return member_id


def report(external_id: str, worker_ref: str, plan_id: str, gross: int, period_start: str = "2026-04-01",
           period_end: str = "2026-04-30", **extra: Any) -> dict[str, Any]:
    """An earnings report body."""
    return {"external_id": external_id, "worker_ref": worker_ref, "plan_id": plan_id,
            "period_start": period_start, "period_end": period_end, "currency": "USD",
            "gross_earnings_minor": gross, **extra}
