"""Fixtures of the HTTP-layer tests: a platform with one enrolled worker and one posted report.

``ledger_state`` reads everything a bad request could have changed (the ledger's checks,
the member's balances and entries, contributions, remittances, fundings, enrollments), so
a test can assert that a refused request left all of it as it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask

from tests.conftest import Caller
from tests.factories import enroll, make_platform, report

PLAN_ID = "dash-plan"


@dataclass
class World:
    """One platform (``dash``, plan ``dash-plan``, 4% split 50/30/20), worker ``w-1`` and a report."""

    admin: Caller
    platform: Caller
    member_id: str
    contribution: dict[str, Any]
    remittance_id: str

    def state(self) -> dict[str, Any]:
        """Everything a request could change, read through the API."""
        verify = self.admin.post("/v1/ledger/verify")
        assert (verify.status_code, verify.json["ok"]) == (200, True), verify.json
        return {
            "verify_ok": verify.json["ok"],
            "balances": self.admin.get(f"/v1/members/{self.member_id}/balances").json,
            "entries": self.admin.get(f"/v1/members/{self.member_id}/entries?limit=500").json,
            "contributions": self.platform.get("/v1/contributions?limit=500").json,
            "remittances": self.admin.get("/v1/remittances?limit=500").json,
            "fundings": self.admin.get("/v1/fundings?limit=500").json,
            "enrollments": self.admin.get("/v1/enrollments?limit=500").json,
            "members": self.admin.get(f"/v1/members/{self.member_id}").json,
        }


@pytest.fixture
def world(app: Flask, admin: Caller) -> World:
    """A platform, worker ``w-1`` enrolled, one report of $1,000.00 posted (4,000 pending)."""
    platform = make_platform(app, admin)
    member_id = enroll(platform, "w-1")
    response = platform.post("/v1/contributions", report("seed-1", "w-1", PLAN_ID, 100000))
    assert response.status_code == 201, response.json
    assert response.json["amount_minor"] == 4000
    return World(admin, platform, member_id, response.json, response.json["remittance_id"])


def assert_error(response: Any, status: int, type_: str, fields: set[str] | None = None) -> dict[str, Any]:
    """The contract's error body with this status and type (and exactly these ``errors`` keys)."""
    body = response.get_json(silent=True) if hasattr(response, "get_json") else response.json()
    assert response.status_code == status, (response.status_code, body)
    assert body is not None, response.data
    assert set(body) == {"code", "status", "type", "message", "errors"}, body
    assert (body["code"], body["type"]) == (status, type_), body
    assert isinstance(body["message"], str) and body["message"], body
    if fields is not None:
        assert set(body["errors"]) == fields, body
    return body
