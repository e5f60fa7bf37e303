"""API.md "Statement" and the yearly tax summary, through the HTTP API, in exact cents.

A month's statement lists, per bucket, the opening and closing pending, available and held
balances and the month's entries: for each bucket and balance, opening plus that month's
entries equals closing, and the closing balance is what the balances endpoint says at the
month's end. An entry belongs to the month its ``effective_at`` falls in (business
timezone): interest accrued in May is effective the first instant of June (DOMAIN.md
"Accrual"), so it is June's; an entry at July's first instant is not June's.
"""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest
from flask import Flask

from api.app import create_app
from ledger.config import Settings
from ledger.db import Database
from ledger.money import BUCKETS
from ledger.postings import STATES
from ledger.services.keys import create_key
from tests.conftest import DEFAULT_NOW, Caller, Clock, new_caller
from tests.scenarios.helpers import assert_books_balance, contribute, get, line, make_plan, platform, remit
from tests.scenarios.withdrawal_helpers import (
    act,
    balances,
    bank_platform,
    funded_member,
    held,
    link,
    new_member,
    record_funding,
)

JUNE_START = "2026-06-01T00:00:00Z"
JULY_START = "2026-07-01T00:00:00Z"


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    """An aware UTC instant."""
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def accrue_through(admin: Caller, through: str) -> dict[str, Any]:
    """``POST /v1/jobs/accrual/runs {through}``; asserts 201, returns the run."""
    response = admin.post("/v1/jobs/accrual/runs", {"through": through})
    assert response.status_code == 201, response.json
    run: dict[str, Any] = response.json
    assert run["status"] == "succeeded", run
    return run


def statement(caller: Caller, member_id: str, month: str) -> dict[str, Any]:
    """The month's statement as JSON (asserts 200)."""
    return get(caller, f"/v1/members/{member_id}/statements/{month}")


@dataclass
class June:
    """The scenario's ids: one member paid by two platforms."""

    member_id: str
    dash: Caller
    ride: Caller
    ride_remittance_id: str


def june_scenario(app: Flask, admin: Caller, clock: Clock) -> June:
    """One member, two platforms (both 50/30/20), every bucket crediting 4.00%:

    - 5 May 10:00Z: dash's April report, 4% of $10,000.00 = 40,000 (20,000 / 12,000 / 8,000),
      funded at once;
    - 1 June: accrual through 31 May posts May's interest (27 days from 5 May), effective
      2026-06-01T00:00Z;
    - 10 June 09:00Z: dash's May report 4% of $5,000.00 = 20,000 (10,000 / 6,000 / 4,000) and
      ride's May report 3% of $512.37 = 1,537 (769 / 461 / 307, DOMAIN.md example 2); dash's
      batch is funded, ride's stays pending;
    - 20 June 14:00Z: holds of 5,000 (healthcare premium), 3,000 (training tuition, completed
      22 June) and 2,000 (retirement IRA, cancelled 25 June);
    - 30 June 23:59:59Z: a hold of 1,000 (healthcare medical expense), June's last second;
    - 1 July 00:00:00Z: a hold of 700 (healthcare premium), July's first instant;
    - 15 July 12:00Z: accrual through 30 June posts June's interest, effective 2026-07-01T00:00Z.
    """
    for bucket in BUCKETS:
        rate = admin.post("/v1/crediting-rates", {"bucket": bucket, "annual_rate_bps": 400,
                                                  "effective_from": "2026-01-01"})
        assert rate.status_code == 201, rate.json
    dash = platform(app, admin, "dash")
    make_plan(admin, "dash", "dash-4pct")
    ride = platform(app, admin, "ride")
    make_plan(admin, "ride", "ride-3pct", rate_bps=300)
    member_id = new_member(admin, birth_year=1980)
    link(admin, "dash", "d-1", member_id)
    link(admin, "ride", "r-1", member_id)

    clock.now = at(2026, 5, 5, 10)
    april = remit(dash, "D-APR", [line("D-APR:0", "d-1", "dash-4pct", 1_000_000,
                                       period_start="2026-04-01", period_end="2026-04-30")])
    assert april["amount_due_minor"] == 40_000
    record_funding(admin, april["id"], 40_000, clock.now)

    clock.now = at(2026, 6, 1, 12)
    accrue_through(admin, "2026-05-31")

    clock.now = at(2026, 6, 10, 9)
    may_dash = remit(dash, "D-MAY", [line("D-MAY:0", "d-1", "dash-4pct", 500_000,
                                          period_start="2026-05-01", period_end="2026-05-31")])
    may_ride = remit(ride, "R-MAY", [line("R-MAY:0", "r-1", "ride-3pct", 51_237,
                                          period_start="2026-05-01", period_end="2026-05-31")])
    assert (may_dash["amount_due_minor"], may_ride["amount_due_minor"]) == (20_000, 1_537)
    record_funding(admin, may_dash["id"], 20_000, clock.now)

    clock.now = at(2026, 6, 20, 14)
    held(admin, member_id, "healthcare", 5_000, "premium")
    tuition = held(admin, member_id, "training", 3_000, "tuition")
    ira = held(admin, member_id, "retirement", 2_000, "ira_transfer")
    clock.now = at(2026, 6, 22, 10)
    act(admin, tuition["id"], "complete")
    clock.now = at(2026, 6, 25, 10)
    act(admin, ira["id"], "cancel")
    clock.now = at(2026, 6, 30, 23, 59, 59)
    held(admin, member_id, "healthcare", 1_000, "medical_expense")
    clock.now = at(2026, 7, 1)
    held(admin, member_id, "healthcare", 700, "premium")

    clock.now = DEFAULT_NOW
    accrue_through(admin, "2026-06-30")
    return June(member_id, dash, ride, may_ride["id"])


#: May's interest, posted 1 June: 27 days (5-31 May) on 20,000 / 12,000 / 8,000 at 4.00%:
#: 216,000,000 / 3,650,000 = 59.17...; 129,600,000 / 3,650,000 = 35.50...; 86,400,000 / 3,650,000 = 23.67...
MAY_INTEREST = {"healthcare": 59, "retirement": 35, "training": 23}
#: June's interest, posted 1 July, with May's carry (650,000 / 1,850,000 / 2,450,000):
#: healthcare 755,770 balance-days x 400 + 650,000 = 302,958,000 -> 83;
#: retirement 477,050 x 400 + 1,850,000 = 192,670,000 -> 52; training 291,690 x 400 + 2,450,000 = 119,126,000 -> 32
JUNE_INTEREST = {"healthcare": 83, "retirement": 52, "training": 32}

JUNE_OPENING = {
    "healthcare": {"pending": 0, "available": 20_000, "held": 0},
    "retirement": {"pending": 0, "available": 12_000, "held": 0},
    "training": {"pending": 0, "available": 8_000, "held": 0},
}
JUNE_CLOSING = {
    # 20,000 + 59 + 10,000 - 5,000 - 1,000; held 5,000 + 1,000; ride's 769 pending
    "healthcare": {"pending": 769, "available": 24_059, "held": 6_000},
    # 12,000 + 35 + 6,000 - 2,000 + 2,000 (cancelled)
    "retirement": {"pending": 461, "available": 18_035, "held": 0},
    # 8,000 + 23 + 4,000 - 3,000; the 3,000 left when completed
    "training": {"pending": 307, "available": 9_023, "held": 0},
}


def shaped(figures: dict[str, dict[str, int]], side: str) -> dict[str, dict[str, int]]:
    """``{bucket: {state: n}}`` as a statement's ``{opening|closing}_{state}_minor`` fields."""
    return {b: {f"{side}_{s}_minor": n for s, n in states.items()} for b, states in figures.items()}


def side(body: dict[str, Any], which: str) -> dict[str, dict[str, int]]:
    """A statement's opening or closing balances as ``{bucket: {state: n}}``."""
    return {b: {s: body["buckets"][b][f"{which}_{s}_minor"] for s in STATES} for b in BUCKETS}


def from_balances(body: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    """The balances endpoint's buckets as ``{bucket: {state: n}}``."""
    return {b: {s: body[b][f"{s}_minor"] for s in STATES} for b in BUCKETS}


def summed(entries: list[dict[str, Any]]) -> dict[tuple[str, str], int]:
    """The entries' amounts per (bucket, balance)."""
    moved: dict[tuple[str, str], int] = defaultdict(int)
    for e in entries:
        moved[(e["bucket"], e["balance"])] += e["amount_minor"]
    return moved


def assert_balances_to_the_cent(body: dict[str, Any]) -> None:
    """For every bucket and balance: opening + the month's entries as listed == closing."""
    moved = summed(body["entries"])
    for bucket in BUCKETS:
        for state in STATES:
            figures = body["buckets"][bucket]
            assert (figures[f"opening_{state}_minor"] + moved[(bucket, state)]
                    == figures[f"closing_{state}_minor"]), (bucket, state, body)


def test_june_statement_with_two_platforms_a_funding_interest_and_withdrawals_balances_to_the_cent(
        app: Flask, admin: Caller, clock: Clock) -> None:
    june = june_scenario(app, admin, clock)

    body = statement(admin, june.member_id, "2026-06")

    assert (body["member_id"], body["month"], body["currency"]) == (june.member_id, "2026-06", "USD")
    assert_balances_to_the_cent(body)
    assert body["buckets"] == {b: {**shaped(JUNE_OPENING, "opening")[b], **shaped(JUNE_CLOSING, "closing")[b]}
                               for b in BUCKETS}
    assert side(body, "closing") == from_balances(balances(admin, june.member_id, "2026-06-30"))
    assert side(body, "opening") == from_balances(balances(admin, june.member_id, "2026-05-31"))
    assert body["totals_by_contributor"] == [{"contributor_id": "dash", "amount_minor": 20_000},
                                             {"contributor_id": "ride", "amount_minor": 1_537}]
    assert len(body["entries"]) == 26
    assert all(JUNE_START <= e["effective_at"] < JULY_START for e in body["entries"])
    interest = {e["bucket"]: e["amount_minor"] for e in body["entries"] if e["kind"] == "interest"}
    assert interest == MAY_INTEREST
    assert {e["effective_at"] for e in body["entries"] if e["kind"] == "interest"} == {JUNE_START}
    contributed = sorted((e["contributor_id"], e["bucket"], e["amount_minor"]) for e in body["entries"]
                         if e["kind"] == "contribution")
    assert contributed == [("dash", "healthcare", 10_000), ("dash", "retirement", 6_000), ("dash", "training", 4_000),
                           ("ride", "healthcare", 769), ("ride", "retirement", 461), ("ride", "training", 307)]
    last_second = [(e["bucket"], e["balance"], e["amount_minor"]) for e in body["entries"]
                   if e["effective_at"] == "2026-06-30T23:59:59Z"]
    assert sorted(last_second) == [("healthcare", "available", -1_000), ("healthcare", "held", 1_000)]
    kinds = Counter(e["kind"] for e in body["entries"])
    assert dict(kinds) == {"interest": 3, "contribution": 6, "funding_applied": 6, "withdrawal_held": 8,
                           "withdrawal_completed": 1, "withdrawal_cancelled": 2}
    assert_books_balance(admin)


def test_an_entry_at_the_next_month_s_first_instant_belongs_to_the_next_month(
        app: Flask, admin: Caller, clock: Clock) -> None:
    """June's interest and the 700 hold, both effective 2026-07-01T00:00Z, open July's statement."""
    june = june_scenario(app, admin, clock)

    july = statement(admin, june.member_id, "2026-07")

    assert side(july, "opening") == JUNE_CLOSING
    assert_balances_to_the_cent(july)
    assert sorted((e["kind"], e["bucket"], e["balance"], e["amount_minor"]) for e in july["entries"]) == [
        ("interest", "healthcare", "available", JUNE_INTEREST["healthcare"]),
        ("interest", "retirement", "available", JUNE_INTEREST["retirement"]),
        ("interest", "training", "available", JUNE_INTEREST["training"]),
        ("withdrawal_held", "healthcare", "available", -700),
        ("withdrawal_held", "healthcare", "held", 700),
    ]
    assert {e["effective_at"] for e in july["entries"]} == {JULY_START}
    assert side(july, "closing") == from_balances(balances(admin, june.member_id))
    assert july["totals_by_contributor"] == []


def test_the_csv_statement_holds_the_same_figures(app: Flask, admin: Caller, clock: Clock) -> None:
    june = june_scenario(app, admin, clock)
    body = statement(admin, june.member_id, "2026-06")

    response = admin.get(f"/v1/members/{june.member_id}/statements/2026-06", headers={"Accept": "text/csv"})

    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    by_line: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        by_line[row["line"]].append(row)
    assert set(by_line) == {"opening", "entry", "closing", "contributed"}
    for which in ("opening", "closing"):
        assert {(r["bucket"], r["balance"]): int(r["amount_minor"]) for r in by_line[which]} == {
            (b, s): n for b, states in side(body, which).items() for s, n in states.items()}
        assert len(by_line[which]) == 9
    assert [(r["entry_id"], r["transaction_id"], r["effective_at"], r["bucket"], r["balance"], r["kind"],
             r["contributor_id"], int(r["amount_minor"]), int(r["balance_after_minor"])) for r in by_line["entry"]] == [
        (e["id"], e["transaction_id"], e["effective_at"], e["bucket"], e["balance"], e["kind"],
         e["contributor_id"] or "", e["amount_minor"], e["balance_after_minor"]) for e in body["entries"]]
    assert [(r["contributor_id"], int(r["amount_minor"])) for r in by_line["contributed"]] == [
        ("dash", 20_000), ("ride", 1_537)]
    opening = {(r["bucket"], r["balance"]): int(r["amount_minor"]) for r in by_line["opening"]}
    closing = {(r["bucket"], r["balance"]): int(r["amount_minor"]) for r in by_line["closing"]}
    moved: dict[tuple[str, str], int] = defaultdict(int)
    for r in by_line["entry"]:
        moved[(r["bucket"], r["balance"])] += int(r["amount_minor"])
    assert all(opening[key] + moved[key] == closing[key] for key in opening)


def test_a_reversal_in_the_month_nets_out_of_the_contributor_s_total(app: Flask, admin: Caller) -> None:
    """Reports of $1,000.00 (4,000) and $500.00 (2,000) in July; reversing the second voids
    the period's two contributions and posts 4,000 again (DOMAIN.md "Reversal"): the month's
    total from dash is 4,000, net of the voids, and the pending closing is 2,000 / 1,200 / 800."""
    dash = platform(app, admin, "dash")
    make_plan(admin, "dash", "dash-4pct")
    member_id = new_member(admin)
    link(admin, "dash", "d-1", member_id)
    days = {"period_start": "2026-07-01", "period_end": "2026-07-10"}
    contribute(dash, line("a", "d-1", "dash-4pct", 100_000, **days))
    second = contribute(dash, line("b", "d-1", "dash-4pct", 50_000, **days))
    reversal = dash.post(f"/v1/contributions/{second['id']}/reversal", {"reason": "sent in error"})
    assert reversal.status_code == 201, reversal.json
    assert reversal.json["replacement"]["amount_minor"] == 4_000

    body = statement(admin, member_id, "2026-07")

    assert_balances_to_the_cent(body)
    assert body["totals_by_contributor"] == [{"contributor_id": "dash", "amount_minor": 4_000}]
    assert side(body, "closing") == {"healthcare": {"pending": 2_000, "available": 0, "held": 0},
                                     "retirement": {"pending": 1_200, "available": 0, "held": 0},
                                     "training": {"pending": 800, "available": 0, "held": 0}}
    assert Counter(e["kind"] for e in body["entries"]) == {"contribution": 9, "contribution_void": 6}
    assert side(body, "closing") == from_balances(balances(admin, member_id))


def test_a_member_reads_their_own_statement_the_same_as_an_administrator(
        app: Flask, admin: Caller, clock: Clock) -> None:
    june = june_scenario(app, admin, clock)
    member = new_caller(app, admin, "member", member_id=june.member_id)

    assert statement(member, june.member_id, "2026-06") == statement(admin, june.member_id, "2026-06")


def test_a_month_before_any_money_is_all_zero(app: Flask, admin: Caller, clock: Clock) -> None:
    member_id = new_member(admin)

    body = statement(admin, member_id, "2026-01")

    assert body["buckets"] == {b: dict.fromkeys([f"{w}_{s}_minor" for w in ("opening", "closing") for s in STATES], 0)
                               for b in BUCKETS}
    assert (body["entries"], body["totals_by_contributor"]) == ([], [])


# -- who may read which month ---------------------------------------------------------------


@pytest.fixture
def member_and_other(app: Flask, admin: Caller, clock: Clock) -> tuple[str, Caller]:
    """A funded member, and another member's key."""
    bank = bank_platform(app, admin)
    owner = funded_member(admin, bank, clock, "healthcare", 10_000)
    other = new_caller(app, admin, "member", member_id=new_member(admin))
    return owner, other


def test_a_member_cannot_read_another_member_s_statement_or_tax_summary(
        member_and_other: tuple[str, Caller]) -> None:
    owner, other = member_and_other

    responses = [other.get(f"/v1/members/{owner}/statements/2026-07"),
                 other.get(f"/v1/members/{owner}/statements/2026-07", headers={"Accept": "text/csv"}),
                 other.get(f"/v1/members/{owner}/tax-summaries/2026")]

    assert [(r.status_code, r.json["type"]) for r in responses] == [(404, "not_found")] * 3


def test_an_unknown_member_has_no_statement(admin: Caller) -> None:
    response = admin.get("/v1/members/mem_doesnotexist/statements/2026-07")

    assert (response.status_code, response.json["type"]) == (404, "not_found")


def test_a_platform_key_cannot_read_statements_or_tax_summaries(
        app: Flask, admin: Caller, member_and_other: tuple[str, Caller]) -> None:
    owner, _ = member_and_other
    dash = platform(app, admin, "dash")

    responses = [dash.get(f"/v1/members/{owner}/statements/2026-07"),
                 dash.get(f"/v1/members/{owner}/tax-summaries/2026")]

    assert [(r.status_code, r.json["type"]) for r in responses] == [(403, "forbidden")] * 2


@pytest.mark.parametrize("month", ["2026-13", "2026-1", "26-01", "2026-00", "2026-001", "202606",
                                   "2026-06-01", "abcd-ef", "２０２６-０６", "2026-0²", "1899-12", "-2026-06",
                                   "2026-06\n", " 2026-06"])
def test_month_text_other_than_yyyy_mm_is_422(admin: Caller, member_and_other: tuple[str, Caller],
                                              month: str) -> None:
    owner, _ = member_and_other

    response = admin.get(f"/v1/members/{owner}/statements/{quote(month)}")

    assert (response.status_code, response.json["type"]) == (422, "validation_error"), response.json
    assert list(response.json["errors"]) == ["month"]


def test_a_month_after_the_current_one_is_422_and_the_current_one_is_readable(
        admin: Caller, member_and_other: tuple[str, Caller], clock: Clock) -> None:
    """The clock is 2026-07-15: July is the current month, August has not begun."""
    owner, _ = member_and_other

    august = admin.get(f"/v1/members/{owner}/statements/2026-08")
    next_year = admin.get(f"/v1/members/{owner}/statements/2027-01")
    july = statement(admin, owner, "2026-07")

    assert [(r.status_code, list(r.json["errors"])) for r in (august, next_year)] == [(422, ["month"])] * 2
    assert (july["buckets"]["healthcare"]["opening_available_minor"],
            july["buckets"]["healthcare"]["closing_available_minor"]) == (0, 10_000)
    clock.now = at(2026, 8, 1)
    assert statement(admin, owner, "2026-08")["entries"] == []


# -- business timezone ------------------------------------------------------------------------


def test_months_are_business_months_in_the_business_timezone(
        database_url: str, database: Database, clock: Clock) -> None:
    """PBL_TIMEZONE=America/Los_Angeles (UTC-7 in summer): 2026-07-01T03:00Z is still 30 June
    there, so its hold is June's; 2026-07-01T07:00Z is July's first instant."""
    la_app = create_app(Settings(database_url=database_url, timezone=ZoneInfo("America/Los_Angeles")), database,
                        clock)
    row, secret = create_key(database, "admin", "la admin", clock.now)
    admin = Caller(la_app.test_client(), secret, row.id)
    bank = bank_platform(la_app, admin)
    clock.now = at(2026, 6, 10, 18)
    member_id = funded_member(admin, bank, clock, "training", 10_000, day="2026-06-10")
    clock.now = at(2026, 7, 1, 3)
    held(admin, member_id, "training", 1_000)
    clock.now = at(2026, 7, 1, 7)
    held(admin, member_id, "training", 2_000)
    clock.now = DEFAULT_NOW

    june = statement(admin, member_id, "2026-06")
    july = statement(admin, member_id, "2026-07")

    assert_balances_to_the_cent(june)
    assert (june["buckets"]["training"]["closing_available_minor"],
            june["buckets"]["training"]["closing_held_minor"]) == (9_000, 1_000)
    assert side(june, "closing") == from_balances(balances(admin, member_id, "2026-06-30"))
    assert [e["amount_minor"] for e in july["entries"] if e["balance"] == "held"] == [2_000]
    assert side(july, "opening") == side(june, "closing")


# -- the tax summary ---------------------------------------------------------------------------


def test_the_tax_summary_shows_each_contributor_interest_and_withdrawals_by_bucket_and_purpose(
        app: Flask, admin: Caller, clock: Clock) -> None:
    """2026 so far: dash paid 40,000 + 20,000, ride 1,537 (funded in July); interest credited
    in the year is May's (117, effective 1 June) and June's (167, effective 1 July);
    withdrawals held or completed in the tax year, by bucket and purpose (the cancelled IRA
    transfer moved nothing and is not listed)."""
    june = june_scenario(app, admin, clock)
    record_funding(admin, june.ride_remittance_id, 1_537, clock.now)
    member = new_caller(app, admin, "member", member_id=june.member_id)

    summary = get(member, f"/v1/members/{june.member_id}/tax-summaries/2026")

    assert summary == {
        "member_id": june.member_id, "year": 2026, "currency": "USD",
        "totals_by_contributor": [{"contributor_id": "dash", "amount_minor": 60_000},
                                  {"contributor_id": "ride", "amount_minor": 1_537}],
        "interest_minor": sum(MAY_INTEREST.values()) + sum(JUNE_INTEREST.values()),
        "withdrawals": [
            {"bucket": "healthcare", "purpose": "medical_expense", "completed_minor": 0, "held_minor": 1_000},
            {"bucket": "healthcare", "purpose": "premium", "completed_minor": 0, "held_minor": 5_700},
            {"bucket": "training", "purpose": "tuition", "completed_minor": 3_000, "held_minor": 0},
        ],
    }
    assert summary["interest_minor"] == 284
    assert get(admin, f"/v1/members/{june.member_id}/tax-summaries/2026") == summary


def test_a_tax_summary_of_a_year_without_activity_is_empty(app: Flask, admin: Caller, clock: Clock) -> None:
    june = june_scenario(app, admin, clock)

    summary = get(admin, f"/v1/members/{june.member_id}/tax-summaries/2025")

    assert summary == {"member_id": june.member_id, "year": 2025, "currency": "USD", "totals_by_contributor": [],
                       "interest_minor": 0, "withdrawals": []}


@pytest.mark.parametrize("year", ["2027", "26", "20266", "abcd", "２０２６", "202²", "1899", "2026\n", "+202"])
def test_a_tax_summary_year_that_is_not_yyyy_or_has_not_begun_is_422(
        admin: Caller, member_and_other: tuple[str, Caller], year: str) -> None:
    owner, _ = member_and_other

    response = admin.get(f"/v1/members/{owner}/tax-summaries/{quote(year)}")

    assert (response.status_code, response.json["type"]) == (422, "validation_error"), response.json
    assert list(response.json["errors"]) == ["year"]
