"""a reversal that voids the contribution blocking a remittance's funding order
must let the money waiting in suspense fund what stood behind it (DOMAIN.md "Funding":
whole, in order; "What is left waits in suspense and funds contributions")."""

from __future__ import annotations

import pytest
from flask import Flask

from ledger.db import Database
from tests.conftest import Caller
from tests.scenarios.helpers import (
    assert_books_balance,
    contribution,
    enroll,
    fund,
    get,
    line,
    money,
    platform,
    remit,
    remittance,
    suspense_minor,
    totals,
)


@pytest.fixture
def dash(app: Flask, admin: Caller) -> Caller:
    caller = platform(app, admin, "dash", **{"dash-m": {}})
    enroll(caller, "w-1")
    enroll(caller, "w-2")
    return caller


def test_voiding_the_blocking_line_funds_the_line_behind_it(admin: Caller, dash: Caller, database: Database) -> None:
    batch = remit(dash, "R1", [line("m-1", "w-1", "dash-m", 125_000),   # 5,000, cannot be covered
                               line("m-2", "w-2", "dash-m", 25_000)])   # 1,000, waits behind it
    fund(admin, batch["id"], 4_000, "wire-1")
    lines = {c["external_id"]: c for c in get(dash, f"/v1/remittances/{batch['id']}/contributions")["data"]}
    assert [lines[x]["status"] for x in ("m-1", "m-2")] == ["pending", "pending"]

    response = dash.post(f"/v1/contributions/{lines['m-1']['id']}/reversal", {"reason": "error"})
    assert response.status_code == 201, response.json
    assert response.json["replacement"] is None

    # 4,000 waits in suspense and nothing is in front of the 1,000 any more: it must be funded.
    assert contribution(dash, lines["m-2"]["id"])["status"] == "available"
    assert totals(admin, lines["m-2"]["member_id"]) == {"pending_minor": 0, "available_minor": 1_000,
                                                        "held_minor": 0}
    assert money(remittance(dash, batch["id"])) == ("overfunded", 1_000, 4_000, 0, 3_000)
    assert suspense_minor(database, batch["id"]) == 3_000
    assert_books_balance(admin)


def test_after_such_a_reversal_the_credit_cannot_strand_a_pending_line(admin: Caller, dash: Caller,
                                                                     database: Database) -> None:
    """Without the fix, the remittance reads 'funded' while its only live line is pending forever."""
    batch = remit(dash, "R1", [line("m-1", "w-1", "dash-m", 125_000),   # 5,000
                               line("m-2", "w-2", "dash-m", 25_000)])   # 1,000
    other = remit(dash, "R2", [line("m-3", "w-1", "dash-m", 50_000, "2026-05-01", "2026-05-31")])  # 2,000
    funding = fund(admin, batch["id"], 4_000, "wire-1")
    lines = {c["external_id"]: c for c in get(dash, f"/v1/remittances/{batch['id']}/contributions")["data"]}
    assert dash.post(f"/v1/contributions/{lines['m-1']['id']}/reversal", {"reason": "e"}).status_code == 201

    moved = admin.post(f"/v1/fundings/{funding['id']}/apply", {"remittance_id": other["id"]})
    assert moved.status_code == 200, moved.json
    assert moved.json["amount_minor"] == 3_000

    rem = remittance(dash, batch["id"])
    assert rem["status"] == "funded"
    # "funded" must mean what it says: every live contribution of the remittance is available.
    assert contribution(dash, lines["m-2"]["id"])["status"] == "available"
    assert_books_balance(admin)


def test_a_reversal_that_voids_a_blocking_line_of_another_remittance_funds_what_stood_behind_it(
        admin: Caller, dash: Caller, database: Database) -> None:
    """The period's first report sits in batch A (blocking A's order); its second report joined
    the monthly remittance. Reversing the second voids both and posts the replacement in the
    monthly remittance: A's blocker is gone, and A's suspense covers the line behind it."""
    batch = remit(dash, "A", [line("r-1", "w-1", "dash-m", 100_000),   # 4,000 (w-1, April)
                              line("x-1", "w-2", "dash-m", 10_000)])   # 400 (w-2, April)
    fund(admin, batch["id"], 1_000, "wire-1")                          # cannot cover the 4,000
    lines = {c["external_id"]: c for c in get(dash, f"/v1/remittances/{batch['id']}/contributions")["data"]}
    second = dash.post("/v1/contributions", line("r-2", "w-1", "dash-m", 25_000, "2026-04-10", "2026-04-20"))
    assert second.status_code == 201, second.json                      # +1,000 into the monthly remittance

    response = dash.post(f"/v1/contributions/{second.json['id']}/reversal", {"reason": "error"})
    assert response.status_code == 201, response.json
    assert response.json["replacement"]["remittance_id"] == second.json["remittance_id"]

    assert money(remittance(dash, batch["id"])) == ("overfunded", 400, 1_000, 0, 600)
    assert contribution(dash, lines["x-1"]["id"])["status"] == "available"
    assert suspense_minor(database, batch["id"]) == 600
    assert_books_balance(admin)
