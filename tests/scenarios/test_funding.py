"""DOMAIN.md "Funding, pending and available" through the HTTP API, in exact cents.

Money received for a remittance lands in its suspense account, then funds the remittance's
contributions whole and in order, stopping at the first it cannot cover. The platform
posts reports; the administrator records bank transfers, applies credit and reverses
fundings recorded in error.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from ledger.db import Database
from tests.conftest import Caller, Clock
from tests.scenarios.helpers import (
    assert_books_balance,
    at,
    buckets,
    contribute,
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

#: three reports whose contributions are exactly 4,000, 1,537 and 2,210 cents
OWES_4000 = ("w-1", "dash-4pct", 100_000)  # 4% of $1,000.00
OWES_1537 = ("w-2", "dash-3pct", 51_237)  # 3% of $512.37 = 1,537.11
OWES_2210 = ("w-3", "dash-4pct", 55_250)  # 4% of $552.50


@pytest.fixture
def dash(app: Flask, admin: Caller) -> Caller:
    """A platform with a 4% and a 3% monthly plan (fixed 50/30/20) and three enrolled workers."""
    caller = platform(app, admin, "dash", **{"dash-4pct": {}, "dash-3pct": {"rate_bps": 300}})
    for worker_ref in ("w-1", "w-2", "w-3", "w-4"):
        enroll(caller, worker_ref)
    return caller


def batch(dash: Caller, external_id: str, *owed: tuple[str, str, int]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Post a remittance of ``owed`` lines; returns it and its contributions in line order."""
    lines = [line(f"{external_id}:{i}", ref, plan, gross) for i, (ref, plan, gross) in enumerate(owed)]
    rem = remit(dash, external_id, lines)
    listed = get(dash, f"/v1/remittances/{rem['id']}/contributions")["data"]
    by_external_id = {c["external_id"]: c for c in listed}
    return rem, [by_external_id[body["external_id"]] for body in lines]


def statuses(caller: Caller, contributions: list[dict[str, Any]]) -> list[str]:
    """Each contribution's status, read now."""
    return [contribution(caller, c["id"])["status"] for c in contributions]


def test_7700_for_7747_owed_funds_the_first_two_and_leaves_2163_in_suspense_short_47(
        admin: Caller, dash: Caller, database: Database) -> None:
    rem, lines = batch(dash, "R", OWES_4000, OWES_1537, OWES_2210)
    assert [c["amount_minor"] for c in lines] == [4_000, 1_537, 2_210]
    assert money(rem) == ("awaiting_funds", 7_747, 0, 7_747, 0)

    received = fund(admin, rem["id"], 7_700, "wire-001")

    assert (received["amount_minor"], received["applied_minor"]) == (7_700, 5_537)
    assert statuses(dash, lines) == ["available", "available", "pending"]
    assert suspense_minor(database, rem["id"]) == 2_163
    assert money(remittance(dash, rem["id"])) == ("partially_funded", 7_747, 7_700, 47, 0)
    assert totals(admin, lines[0]["member_id"])["available_minor"] == 4_000
    assert totals(admin, lines[2]["member_id"]) == {"pending_minor": 2_210, "available_minor": 0, "held_minor": 0}
    assert_books_balance(admin)

    fund(admin, rem["id"], 47, "wire-002")

    assert statuses(dash, lines) == ["available", "available", "available"]
    assert suspense_minor(database, rem["id"]) == 0
    assert money(remittance(dash, rem["id"])) == ("funded", 7_747, 7_747, 0, 0)
    assert buckets(admin, lines[2]["member_id"], "available") == (1_105, 663, 442)
    assert totals(admin, lines[2]["member_id"])["pending_minor"] == 0
    fundings = get(admin, f"/v1/remittances/{rem['id']}/fundings")["data"]
    assert sorted((f["amount_minor"], f["applied_minor"]) for f in fundings) == [(47, 47), (7_700, 7_700)]
    assert_books_balance(admin)


def test_5600_funds_only_the_4000_when_the_2210_behind_it_cannot_be_covered(
        admin: Caller, dash: Caller, database: Database) -> None:
    rem, lines = batch(dash, "R", OWES_4000, OWES_2210, OWES_1537)

    fund(admin, rem["id"], 5_600, "wire-001")

    assert statuses(dash, lines) == ["available", "pending", "pending"]
    assert suspense_minor(database, rem["id"]) == 1_600
    assert money(remittance(dash, rem["id"])) == ("partially_funded", 7_747, 5_600, 2_147, 0)
    assert totals(admin, lines[2]["member_id"])["available_minor"] == 0
    assert_books_balance(admin)


def test_money_beyond_what_is_owed_is_credit_that_an_administrator_applies_to_another_remittance(
        admin: Caller, dash: Caller, database: Database) -> None:
    first, (owed,) = batch(dash, "R1", OWES_4000)
    second, (later,) = batch(dash, "R2", ("w-4", "dash-4pct", 25_000))  # 1,000

    over = fund(admin, first["id"], 5_000, "wire-001")

    assert money(remittance(dash, first["id"])) == ("overfunded", 4_000, 5_000, 0, 1_000)
    assert suspense_minor(database, first["id"]) == 1_000
    assert contribution(dash, owed["id"])["status"] == "available"

    applied = admin.post(f"/v1/fundings/{over['id']}/apply", {"remittance_id": second["id"]})

    assert applied.status_code == 200, applied.json
    assert (applied.json["amount_minor"], applied.json["applied_minor"]) == (1_000, 1_000)
    assert (applied.json["source"], applied.json["applied_from_funding_id"]) == ("apply", over["id"])
    assert money(remittance(dash, first["id"])) == ("funded", 4_000, 4_000, 0, 0)
    assert money(remittance(dash, second["id"])) == ("funded", 1_000, 1_000, 0, 0)
    assert contribution(dash, later["id"])["status"] == "available"
    assert (suspense_minor(database, first["id"]), suspense_minor(database, second["id"])) == (0, 0)
    assert get(admin, f"/v1/fundings/{over['id']}")["moved_minor"] == 1_000
    assert admin.post(f"/v1/fundings/{over['id']}/apply", {"remittance_id": second["id"]}).status_code == 409
    assert_books_balance(admin)


def test_part_of_a_credit_can_be_applied_and_the_rest_stays_credit(
        admin: Caller, dash: Caller, database: Database) -> None:
    first, _ = batch(dash, "R1", OWES_4000)
    second, (later,) = batch(dash, "R2", ("w-4", "dash-4pct", 25_000))  # 1,000
    over = fund(admin, first["id"], 5_000, "wire-001")

    too_much = admin.post(f"/v1/fundings/{over['id']}/apply", {"remittance_id": second["id"], "amount_minor": 1_001})
    part = admin.post(f"/v1/fundings/{over['id']}/apply", {"remittance_id": second["id"], "amount_minor": 600})

    assert (too_much.status_code, list(too_much.json["errors"])) == (422, ["amount_minor"])
    assert part.status_code == 200, part.json
    assert money(remittance(dash, first["id"])) == ("overfunded", 4_000, 4_400, 0, 400)
    assert money(remittance(dash, second["id"])) == ("partially_funded", 1_000, 600, 400, 0)
    assert contribution(dash, later["id"])["status"] == "pending"
    assert suspense_minor(database, second["id"]) == 600
    assert_books_balance(admin)


def test_credit_cannot_be_applied_to_another_contributor_s_remittance(
        app: Flask, admin: Caller, dash: Caller, database: Database) -> None:
    lyft = platform(app, admin, "lyft", **{"lyft-4pct": {}})
    enroll(lyft, "l-1")
    first, _ = batch(dash, "R1", OWES_4000)
    other = remit(lyft, "L1", [line("l:0", "l-1", "lyft-4pct", 25_000)])
    over = fund(admin, first["id"], 5_000, "wire-001")

    refused = admin.post(f"/v1/fundings/{over['id']}/apply", {"remittance_id": other["id"]})
    unknown = admin.post(f"/v1/fundings/{over['id']}/apply", {"remittance_id": "rem_nope"})

    assert (refused.status_code, list(refused.json["errors"])) == (422, ["remittance_id"])
    assert (unknown.status_code, list(unknown.json["errors"])) == (422, ["remittance_id"])
    assert money(remittance(admin, first["id"])) == ("overfunded", 4_000, 5_000, 0, 1_000)
    assert money(remittance(admin, other["id"])) == ("awaiting_funds", 1_000, 0, 1_000, 0)
    assert suspense_minor(database, first["id"]) == 1_000
    assert_books_balance(admin)


def test_a_funding_recorded_in_error_is_reversed_while_none_of_its_money_was_used(
        admin: Caller, dash: Caller, database: Database) -> None:
    rem, (owed,) = batch(dash, "R", OWES_4000)
    mistake = fund(admin, rem["id"], 1_000, "wire-typo")
    assert money(remittance(dash, rem["id"])) == ("partially_funded", 4_000, 1_000, 3_000, 0)

    reversed_ = admin.post(f"/v1/fundings/{mistake['id']}/reversal")

    assert reversed_.status_code == 201, reversed_.json
    assert (reversed_.json["status"], reversed_.json["amount_minor"]) == ("reversed", 1_000)
    assert reversed_.json["reversed_at"] is not None
    assert money(remittance(dash, rem["id"])) == ("awaiting_funds", 4_000, 0, 4_000, 0)
    assert suspense_minor(database, rem["id"]) == 0
    assert contribution(dash, owed["id"])["status"] == "pending"
    assert admin.post(f"/v1/fundings/{mistake['id']}/reversal").status_code == 409
    assert_books_balance(admin)


def test_a_funding_that_made_a_contribution_available_cannot_be_reversed(
        admin: Caller, dash: Caller, database: Database) -> None:
    rem, (owed,) = batch(dash, "R", OWES_4000)
    paid = fund(admin, rem["id"], 4_000, "wire-001")

    refused = admin.post(f"/v1/fundings/{paid['id']}/reversal")

    assert (refused.status_code, refused.json["type"]) == (409, "conflict")
    assert money(remittance(dash, rem["id"])) == ("funded", 4_000, 4_000, 0, 0)
    assert contribution(dash, owed["id"])["status"] == "available"
    assert totals(admin, owed["member_id"])["available_minor"] == 4_000
    assert_books_balance(admin)


def test_a_reference_already_recorded_is_refused_with_409_and_nothing_moves(
        admin: Caller, dash: Caller, database: Database) -> None:
    rem, _ = batch(dash, "R", OWES_4000)
    other, _ = batch(dash, "R2", OWES_2210)
    fund(admin, rem["id"], 1_000, "wire-001")

    again = fund(admin, rem["id"], 1_000, "wire-001", status=409)
    elsewhere = fund(admin, other["id"], 2_210, "wire-001", status=409)

    assert (again["type"], list(again["errors"])) == ("conflict", ["reference"])
    assert elsewhere["type"] == "conflict"
    assert money(remittance(dash, rem["id"])) == ("partially_funded", 4_000, 1_000, 3_000, 0)
    assert money(remittance(dash, other["id"]))[2] == 0
    assert suspense_minor(database, rem["id"]) == 1_000
    assert_books_balance(admin)


def test_money_in_another_currency_is_refused_with_422_on_currency(
        admin: Caller, dash: Caller, database: Database) -> None:
    rem, _ = batch(dash, "R", OWES_4000)

    refused = fund(admin, rem["id"], 4_000, "wire-eur", currency="EUR", status=422)

    assert list(refused["errors"]) == ["currency"]
    assert money(remittance(dash, rem["id"])) == ("awaiting_funds", 4_000, 0, 4_000, 0)
    assert suspense_minor(database, rem["id"]) == 0
    assert get(admin, "/v1/fundings")["data"] == []
    assert_books_balance(admin)


def test_single_reports_join_the_open_monthly_remittance_and_its_suspense_funds_one_that_joins_later(
        admin: Caller, dash: Caller, database: Database) -> None:
    first = contribute(dash, line("s-1", *OWES_4000))
    second = contribute(dash, line("s-2", *OWES_1537))
    monthly = first["remittance_id"]
    assert second["remittance_id"] == monthly
    rem = remittance(dash, monthly)
    assert (rem["line_count"], rem["due_date"]) == (2, "2026-08-15")
    assert money(rem) == ("open", 5_537, 0, 5_537, 0)

    fund(admin, monthly, 6_000, "wire-001")

    assert statuses(dash, [first, second]) == ["available", "available"]
    assert suspense_minor(database, monthly) == 463
    assert money(remittance(dash, monthly)) == ("open", 5_537, 6_000, 0, 463)

    third = contribute(dash, line("s-3", "w-4", "dash-4pct", 10_000))  # 400, covered by the 463 waiting
    fourth = contribute(dash, line("s-4", *OWES_2210))  # 2,210, more than the 63 left

    assert (third["remittance_id"], third["amount_minor"], third["status"]) == (monthly, 400, "available")
    assert (fourth["remittance_id"], fourth["status"]) == (monthly, "pending")
    assert totals(admin, third["member_id"])["available_minor"] == 400
    assert suspense_minor(database, monthly) == 63
    assert money(remittance(dash, monthly)) == ("open", 8_147, 6_000, 2_147, 0)
    assert get(admin, f"/v1/remittances/{monthly}/fundings")["data"][0]["applied_minor"] == 5_937
    assert_books_balance(admin)


def test_a_monthly_remittance_is_open_then_awaiting_funds_then_overdue_after_the_15th(
        admin: Caller, dash: Caller, clock: Clock) -> None:
    monthly = contribute(dash, line("s-1", *OWES_4000))["remittance_id"]

    seen = {}
    for when in ("2026-07-31T23:59", "2026-08-01T00:00", "2026-08-15T23:59", "2026-08-16T00:00"):
        clock.now = at(when)
        seen[when] = remittance(admin, monthly)["status"]
    overdue = get(admin, "/v1/remittances?status=overdue")["data"]
    fund(admin, monthly, 4_000, "wire-late")
    late_but_paid = remittance(admin, monthly)

    assert seen == {"2026-07-31T23:59": "open", "2026-08-01T00:00": "awaiting_funds",
                    "2026-08-15T23:59": "awaiting_funds", "2026-08-16T00:00": "overdue"}
    assert [r["id"] for r in overdue] == [monthly]
    assert money(late_but_paid) == ("funded", 4_000, 4_000, 0, 0)
    assert get(admin, "/v1/remittances?status=overdue")["data"] == []
    assert_books_balance(admin)


def test_a_partly_paid_monthly_remittance_is_partially_funded_then_overdue(
        admin: Caller, dash: Caller, clock: Clock) -> None:
    monthly = contribute(dash, line("s-1", *OWES_4000))["remittance_id"]
    fund(admin, monthly, 1_000, "wire-part")

    clock.now = at("2026-08-10T12:00")
    early = money(remittance(admin, monthly))
    clock.now = at("2026-08-16T12:00")
    late = money(remittance(admin, monthly))

    assert early == ("partially_funded", 4_000, 1_000, 3_000, 0)
    assert late == ("overdue", 4_000, 1_000, 3_000, 0)
    assert [r["id"] for r in get(admin, "/v1/remittances?status=partially_funded")["data"]] == []
    assert_books_balance(admin)


def test_a_report_posted_in_august_opens_a_new_monthly_remittance(
        admin: Caller, dash: Caller, clock: Clock) -> None:
    july = contribute(dash, line("s-1", *OWES_4000))
    clock.now = at("2026-08-03T12:00")
    august = contribute(dash, line("s-2", *OWES_2210))

    assert july["remittance_id"] != august["remittance_id"]
    assert money(remittance(admin, july["remittance_id"])) == ("awaiting_funds", 4_000, 0, 4_000, 0)
    assert money(remittance(admin, august["remittance_id"])) == ("open", 2_210, 0, 2_210, 0)
    assert remittance(admin, august["remittance_id"])["due_date"] == "2026-09-15"
    assert_books_balance(admin)


def test_a_batch_is_awaiting_funds_once_posted_and_overdue_after_the_15th_of_next_month(
        admin: Caller, dash: Caller, clock: Clock) -> None:
    rem, _ = batch(dash, "R", OWES_4000)

    assert (rem["status"], rem["due_date"], rem["line_count"]) == ("awaiting_funds", "2026-08-15", 1)
    clock.now = at("2026-08-16T00:00")
    assert remittance(admin, rem["id"])["status"] == "overdue"
    assert_books_balance(admin)
