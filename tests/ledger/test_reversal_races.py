"""A reversal racing a funding of the same remittance (DOMAIN.md "Reversal", DESIGN.md "Concurrency").

The reversal must decide "is any money of this period available?" while it holds the
locks that stop a funding from making that money available. The funding below is paused
(inside its transaction, after it made the contribution available, before it commits)
until the reversal has read the period and is about to lock the remittance; the reversal
must then see the funded contribution and answer 409, never void available money.

On SQLite ``BEGIN IMMEDIATE`` serializes the two transactions whole, so the pause just
times out and the story runs one after the other; on PostgreSQL the two really overlap.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask

from ledger.db import Database
from ledger.errors import ConflictError
from ledger.principal import Principal
from ledger.services import contributions, funding
from tests.conftest import Caller
from tests.scenarios.helpers import assert_books_balance, contribute, enroll, get, line, platform, remittance, totals

NOW = datetime(2026, 7, 15, 12, 0, tzinfo=UTC)
PAUSE_S = 2.0


@pytest.mark.parametrize("other_pending_minor", [0, 4_000], ids=["alone", "with-other-pending-money"])
def test_a_reversal_racing_the_funding_that_makes_its_period_available_is_refused(
        app: Flask, admin: Caller, database: Database, monkeypatch: pytest.MonkeyPatch,
        other_pending_minor: int) -> None:
    """Alone, the lost race once ended in an InvariantError (a 500); with other pending money in
    the member's buckets it silently voided available money and gave the contributor a credit
    for it as well (the same 4,000 twice)."""
    dash = platform(app, admin, "dash", **{"dash-m": {}})
    enroll(dash, "w-1")
    if other_pending_minor:
        batch = dash.post("/v1/remittances", {"external_id": "march", "currency": "USD", "lines": [
            line("m-0", "w-1", "dash-m", other_pending_minor * 25, "2026-03-01", "2026-03-31")]})
        assert batch.status_code == 201, batch.json
    report = contribute(dash, line("m-1", "w-1", "dash-m", 100_000))  # 4,000 pending
    funded_inside = threading.Event()
    reversal_read_period = threading.Event()
    original_fund, original_lock = funding.fund_from_suspense, contributions.lock_remittance

    def fund_then_pause(*args: Any, **kwargs: Any) -> int:
        used = original_fund(*args, **kwargs)
        funded_inside.set()
        reversal_read_period.wait(PAUSE_S)
        return used

    def signal_then_lock(*args: Any, **kwargs: Any) -> Any:
        reversal_read_period.set()
        return original_lock(*args, **kwargs)

    monkeypatch.setattr(funding, "fund_from_suspense", fund_then_pause)
    monkeypatch.setattr(contributions, "lock_remittance", signal_then_lock)
    outcome: dict[str, Any] = {}

    def pay() -> None:
        money = funding.ManualFunding(4_000, "USD", "wire-race", NOW)
        outcome["funding"] = funding.record_funding(database, report["remittance_id"], money, NOW)

    payer = threading.Thread(target=pay)
    payer.start()
    funded_inside.wait(PAUSE_S)
    with pytest.raises(ConflictError, match="already available"):
        contributions.reverse_contribution(
            database, Principal("admin", "key_test"), report["id"], "race",
            contributions.Settings(today=NOW.date(), now=NOW, due_day=15))
    payer.join(timeout=30)

    assert outcome["funding"].applied_minor == 4_000
    assert get(admin, f"/v1/contributions/{report['id']}")["status"] == "available"
    assert totals(admin, report["member_id"]) == {
        "pending_minor": other_pending_minor, "available_minor": 4_000, "held_minor": 0}
    assert remittance(admin, report["remittance_id"])["amount_due_minor"] == 4_000
    assert remittance(admin, report["remittance_id"])["credit_minor"] == 0
    assert_books_balance(admin)
