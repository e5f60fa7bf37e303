"""DOMAIN.md "Reversal" through the HTTP API: undoing one report while its period is pending.

A reversal voids every contribution of the report's (member, plan, period), recomputes the
period without the report and posts what it now owes as one replacement in the reversed
report's remittance. Once any positive amount of the period is available: 409.
"""

from __future__ import annotations

import pytest
from flask import Flask

from ledger.db import Database
from tests.conftest import Caller, new_caller
from tests.scenarios.helpers import (
    assert_books_balance,
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
    split,
    suspense_minor,
    totals,
)

QUARTER_750 = {"period": "quarter", "min_earnings_minor": 75_000}


@pytest.fixture
def dash(app: Flask, admin: Caller) -> Caller:
    """A platform with a quarterly 4% plan ($750 threshold) and a monthly 4% plan, worker w-1."""
    caller = platform(app, admin, "dash", **{"dash-q": QUARTER_750, "dash-m": {}})
    enroll(caller, "w-1")
    enroll(caller, "w-2")
    return caller


def reverse(caller: Caller, contribution_id: str, status: int = 201) -> dict:
    """POST a reversal; asserts the status, returns the body."""
    response = caller.post(f"/v1/contributions/{contribution_id}/reversal", {"reason": "reported in error"})
    assert response.status_code == status, response.json
    body: dict = response.json
    return body


def test_a_reversal_is_refused_once_money_of_the_period_is_available(admin: Caller, dash: Caller) -> None:
    first = contribute(dash, line("m-1", "w-1", "dash-m", 100_000))  # 4,000
    fund(admin, first["remittance_id"], 4_000, "wire-001")
    second = contribute(dash, line("m-2", "w-1", "dash-m", 50_000, "2026-04-10", "2026-04-20"))  # 2,000 pending
    member_id = first["member_id"]

    refused_second = reverse(dash, second["id"], status=409)
    refused_first = reverse(admin, first["id"], status=409)

    assert (refused_second["type"], refused_first["type"]) == ("conflict", "conflict")
    assert (contribution(dash, first["id"])["status"], contribution(dash, second["id"])["status"]) == (
        "available", "pending")
    assert totals(admin, member_id) == {"pending_minor": 2_000, "available_minor": 4_000, "held_minor": 0}
    assert remittance(dash, first["remittance_id"])["amount_due_minor"] == 6_000
    assert_books_balance(admin)


def test_money_available_in_another_period_does_not_block_a_reversal(admin: Caller, dash: Caller) -> None:
    march = contribute(dash, line("m-3", "w-1", "dash-m", 100_000, "2026-03-01", "2026-03-31"))
    fund(admin, march["remittance_id"], 4_000, "wire-001")
    april = contribute(dash, line("m-4", "w-1", "dash-m", 50_000))

    result = reverse(dash, april["id"])

    assert (result["reversed"], result["replacement"]) == ([april["id"]], None)
    assert totals(admin, march["member_id"]) == {"pending_minor": 0, "available_minor": 4_000, "held_minor": 0}
    assert money(remittance(dash, april["remittance_id"]))[1:] == (4_000, 4_000, 0, 0)
    assert_books_balance(admin)


def test_reversing_a_report_twice_answers_409_the_second_time(admin: Caller, dash: Caller) -> None:
    report = contribute(dash, line("m-1", "w-1", "dash-m", 100_000))

    first = reverse(dash, report["id"])
    second = reverse(dash, report["id"], status=409)

    assert (first["reversed"], first["replacement"]) == ([report["id"]], None)
    assert second["type"] == "conflict"
    assert totals(admin, report["member_id"])["pending_minor"] == 0
    assert remittance(dash, report["remittance_id"])["amount_due_minor"] == 0
    assert_books_balance(admin)


def test_a_platform_cannot_reverse_another_platform_s_report_and_a_member_key_is_forbidden(
        app: Flask, admin: Caller, dash: Caller) -> None:
    report = contribute(dash, line("m-1", "w-1", "dash-m", 100_000))
    lyft = platform(app, admin, "lyft", **{"lyft-m": {}})
    member = new_caller(app, admin, "member", member_id=report["member_id"])

    other_platform = reverse(lyft, report["id"], status=404)
    member_key = reverse(member, report["id"], status=403)
    unknown = reverse(dash, "ctb_does_not_exist", status=404)

    assert (other_platform["type"], member_key["type"], unknown["type"]) == ("not_found", "forbidden", "not_found")
    assert contribution(dash, report["id"])["status"] == "pending"
    assert totals(admin, report["member_id"])["pending_minor"] == 4_000
    assert_books_balance(admin)


def test_the_replacement_lands_in_the_reversed_report_s_remittance_and_each_due_drops_by_what_was_voided(
        admin: Caller, dash: Caller) -> None:
    batch = remit(dash, "R1", [line("q-800", "w-1", "dash-q", 80_000)])  # 3,200
    single = contribute(dash, line("q-500", "w-1", "dash-q", 50_000, "2026-05-01", "2026-05-31"))  # +2,000
    monthly = single["remittance_id"]
    assert (remittance(dash, batch["id"])["amount_due_minor"], single["amount_minor"]) == (3_200, 2_000)
    assert remittance(dash, monthly)["amount_due_minor"] == 2_000
    member_id = single["member_id"]
    (first,) = get(dash, f"/v1/remittances/{batch['id']}/contributions")["data"]

    result = reverse(dash, single["id"])

    replacement = result["replacement"]
    assert sorted(result["reversed"]) == sorted([first["id"], single["id"]])
    assert (replacement["remittance_id"], replacement["amount_minor"], replacement["status"]) == (
        monthly, 3_200, "pending")
    assert (replacement["kind"], replacement["eligible"], split(replacement)) == (
        "replacement", True, (1_600, 960, 640))
    assert (replacement["period_start"], replacement["period_end"]) == ("2026-04-01", "2026-06-30")
    assert money(remittance(dash, batch["id"]))[1] == 0
    assert money(remittance(dash, monthly))[1] == 3_200
    assert [contribution(dash, c)["status"] for c in (first["id"], single["id"])] == ["void", "void"]
    assert buckets(admin, member_id) == (1_600, 960, 640)
    listed = get(dash, f"/v1/remittances/{monthly}/contributions")["data"]
    assert sorted((c["amount_minor"], c["status"]) for c in listed) == [(2_000, "void"), (3_200, "pending")]
    assert_books_balance(admin)


def test_the_replacement_is_reversed_by_reversing_the_report_left_in_the_period(
        admin: Caller, dash: Caller) -> None:
    first = contribute(dash, line("q-800", "w-1", "dash-q", 80_000))
    second = contribute(dash, line("q-500", "w-1", "dash-q", 50_000))
    replacement = reverse(dash, second["id"])["replacement"]

    not_a_report = reverse(dash, replacement["id"], status=409)
    result = reverse(dash, first["id"])

    assert not_a_report["type"] == "conflict"
    assert (result["reversed"], result["replacement"]) == ([replacement["id"]], None)
    assert totals(admin, first["member_id"])["pending_minor"] == 0
    assert remittance(dash, first["remittance_id"])["amount_due_minor"] == 0
    assert_books_balance(admin)


def test_suspense_waiting_in_a_batch_becomes_its_credit_when_the_reversal_voids_what_it_owed(
        admin: Caller, dash: Caller, database: Database) -> None:
    batch = remit(dash, "R1", [line("m-1", "w-1", "dash-m", 100_000)])  # 4,000
    fund(admin, batch["id"], 1_000, "wire-part")
    (owed,) = get(dash, f"/v1/remittances/{batch['id']}/contributions")["data"]

    reverse(dash, owed["id"])

    assert money(remittance(dash, batch["id"])) == ("overfunded", 0, 1_000, 0, 1_000)
    assert suspense_minor(database, batch["id"]) == 1_000
    assert_books_balance(admin)


def test_only_the_period_with_available_money_is_locked_against_reversal_in_a_partly_funded_batch(
        admin: Caller, dash: Caller, database: Database) -> None:
    batch = remit(dash, "R1", [line("m-1", "w-1", "dash-m", 100_000),  # 4,000
                               line("m-2", "w-1", "dash-m", 25_000),  # +1,000
                               line("m-3", "w-2", "dash-m", 500_000)])  # 20,000, never covered
    fund(admin, batch["id"], 4_500, "wire-part")  # covers 4,000, leaves 500 (the 1,000 is too much)
    lines = {c["external_id"]: c for c in get(dash, f"/v1/remittances/{batch['id']}/contributions")["data"]}
    assert [lines[x]["status"] for x in ("m-1", "m-2", "m-3")] == ["available", "pending", "pending"]

    refused = reverse(dash, lines["m-2"]["id"], status=409)
    other = reverse(dash, lines["m-3"]["id"])

    assert refused["type"] == "conflict"
    assert other["replacement"] is None
    assert money(remittance(dash, batch["id"])) == ("partially_funded", 5_000, 4_500, 500, 0)
    assert suspense_minor(database, batch["id"]) == 500
    assert totals(admin, lines["m-3"]["member_id"])["pending_minor"] == 0
    assert_books_balance(admin)


def test_a_replacement_is_funded_at_once_from_suspense_waiting_in_its_remittance(
        admin: Caller, dash: Caller, database: Database) -> None:
    batch = remit(dash, "R1", [line("q-5000", "w-1", "dash-q", 500_000),  # 20,000
                               line("q-800", "w-1", "dash-q", 80_000)])  # +3,200
    fund(admin, batch["id"], 5_000, "wire-part")  # cannot cover the 20,000, so nothing is available
    lines = {c["external_id"]: c for c in get(dash, f"/v1/remittances/{batch['id']}/contributions")["data"]}
    assert [lines[x]["status"] for x in ("q-5000", "q-800")] == ["pending", "pending"]

    result = reverse(dash, lines["q-5000"]["id"])

    replacement = result["replacement"]
    assert (replacement["remittance_id"], replacement["amount_minor"]) == (batch["id"], 3_200)
    assert contribution(dash, replacement["id"])["status"] == "available"
    assert money(remittance(dash, batch["id"])) == ("overfunded", 3_200, 5_000, 0, 1_800)
    assert suspense_minor(database, batch["id"]) == 1_800
    assert buckets(admin, lines["q-800"]["member_id"], "available") == (1_600, 960, 640)
    assert totals(admin, lines["q-800"]["member_id"])["pending_minor"] == 0
    assert get(admin, f"/v1/remittances/{batch['id']}/fundings")["data"][0]["applied_minor"] == 3_200
    assert_books_balance(admin)
