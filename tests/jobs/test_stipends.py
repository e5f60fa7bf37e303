"""DOMAIN.md "Accrual" (last point): employer stipends, and API.md "Remittance": closing.

A ``flat_per_period`` plan with ``paid_by: schedule`` pays, at each period end, every
member enrolled with its contributor during the period, pro-rated by the days enrolled and
rounded half-up once (DOMAIN.md "Money"), into the contributor's open monthly remittance
for the business month in which they are posted (DOMAIN.md "Funding": June's stipends,
posted on 15 July, join July's remittance, due 15 August), pending until the employer pays;
each member and period once. The ``close_remittances`` job pays them and counts the
remittances that closed (``open`` until their month is over, then ``awaiting_funds``, due
day ``PBL_REMITTANCE_DUE_DAY`` of the next month, ``overdue`` after it while short).
"""

from __future__ import annotations

from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask

from api.app import create_app
from jobs.close_remittances import close_through
from ledger.config import Settings
from ledger.db import Database
from ledger.services.keys import create_key
from ledger.services.stipends import pay_period, stipend_minor
from tests.conftest import Caller, Clock, new_caller
from tests.jobs.conftest import at, record_funds, run, together
from tests.scenarios.helpers import (
    assert_books_balance,
    buckets,
    contribute,
    enroll,
    get,
    line,
    make_contributor,
    make_plan,
    money,
    platform,
    remittance,
    totals,
)

UTC_ZONE = ZoneInfo("UTC")


@pytest.mark.parametrize(("amount", "days", "period_days", "expected"), [
    (90_000, 10, 30, 30_000),
    (100_000, 10, 30, 33_333),  # 33,333.33...
    (100_000, 20, 30, 66_667),  # 66,666.66...
    (99_999, 15, 30, 50_000),  # 49,999.5: half-up
    (90_000, 30, 31, 87_097),  # 87,096.77...
    (91_000, 50, 91, 50_000),
    (90_000, 30, 30, 90_000),
    (107_400, 0, 92, 0),
])
def test_stipend_is_amount_times_days_enrolled_over_days_in_period_half_up_once(
        amount: int, days: int, period_days: int, expected: int) -> None:
    """DOMAIN.md "Money": a pro-rated stipend is rounded half-up on the exact rational value, once."""
    assert stipend_minor(amount, days, period_days) == expected


def employer(app: Flask, admin: Caller, contributor_id: str = "care", **plans: dict[str, Any]) -> Caller:
    """An employer with ``flat_per_period`` plans paid on a schedule (monthly, fixed 50/30/20
    unless the terms say otherwise), and its key."""
    make_contributor(admin, contributor_id, kind="employer")
    for plan_id, terms in plans.items():
        make_plan(admin, contributor_id, plan_id, **{
            "basis": "flat_per_period", "rate_bps": None, "paid_by": "schedule", "period": "month", **terms})
    return new_caller(app, admin, "platform", contributor_id=contributor_id)


def remittances_of(admin: Caller, contributor_id: str) -> list[dict[str, Any]]:
    """A contributor's remittances, oldest first."""
    data = get(admin, "/v1/remittances?limit=500")["data"]
    return [r for r in reversed(data) if r["contributor_id"] == contributor_id]


def stipends_in(admin: Caller, remittance_id: str) -> dict[tuple[str, str], dict[str, Any]]:
    """A remittance's contributions by (worker_ref, plan_id)."""
    data = get(admin, f"/v1/remittances/{remittance_id}/contributions?limit=500")["data"]
    return {(c["worker_ref"], c["plan_id"]): c for c in data}


def allocations(c: dict[str, Any]) -> tuple[int, int, int]:
    a = c["allocations"]
    return (a["healthcare"], a["retirement"], a["training"])


@pytest.fixture
def care(app: Flask, admin: Caller, clock: Clock) -> dict[str, str]:
    """Employer ``care`` with monthly stipends of 900.00 and 1,000.00 from 1 June 2026;
    A enrolled on 20 May (all of June), B on 21 June (10 of June's 30 days), C on 2 July.
    Returns worker_ref -> member id."""
    clock.now = at("2026-05-20T12:00")
    key = employer(app, admin, **{"care-90k": {"amount_minor": 90_000, "effective_from": "2026-06-01"},
                                  "care-100k": {"amount_minor": 100_000, "effective_from": "2026-06-01"}})
    members = {"w-a": enroll(key, "w-a")}
    clock.now = at("2026-06-21T12:00")
    members["w-b"] = enroll(key, "w-b")
    clock.now = at("2026-07-02T12:00")
    members["w-c"] = enroll(key, "w-c")
    clock.now = at("2026-07-15T12:00")
    return members


def test_june_stipends_are_pro_rated_by_days_enrolled_into_the_remittance_of_the_month_they_are_posted_in(
        admin: Caller, care: dict[str, str]) -> None:
    """DOMAIN.md "Accrual": enrolled all June -> the whole 900.00 and 1,000.00; enrolled
    10 of 30 days -> a third: 300.00 and 333.33 (33,333.33... half-up -> 33,333); enrolled in
    July -> nothing for June. Posted on 15 July, all four land, pending, in care's July
    monthly remittance (DOMAIN.md "Funding"), open until 31 July, due 15 August; no
    remittance closed through 30 June; split 50/30/20 by the largest remainder."""
    body = run(admin, "close_remittances", "2026-06-30")

    assert (body["key"], body["status"]) == ("close_remittances:2026-06-30", "succeeded")
    assert body["counts"] == {"stipend_periods": 2, "stipends": 4, "stipend_minor": 253_333,
                              "remittances_closed": 0, "remittances_overdue": 0}
    (rem,) = remittances_of(admin, "care")
    assert money(rem) == ("open", 253_333, 0, 253_333, 0)
    assert (rem["line_count"], rem["due_date"], rem["currency"]) == (4, "2026-08-15", "USD")
    paid = stipends_in(admin, rem["id"])
    assert sorted(paid) == [("w-a", "care-100k"), ("w-a", "care-90k"), ("w-b", "care-100k"), ("w-b", "care-90k")]
    assert {k: (c["amount_minor"], allocations(c), c["period_start"], c["period_end"], c["status"], c["kind"])
            for k, c in paid.items()} == {
        ("w-a", "care-90k"): (90_000, (45_000, 27_000, 18_000), "2026-06-01", "2026-06-30", "pending", "stipend"),
        ("w-a", "care-100k"): (100_000, (50_000, 30_000, 20_000), "2026-06-01", "2026-06-30", "pending", "stipend"),
        ("w-b", "care-90k"): (30_000, (15_000, 9_000, 6_000), "2026-06-21", "2026-06-30", "pending", "stipend"),
        # 16,666.5 / 9,999.9 / 6,666.6: the 2 left over go to the largest remainders
        ("w-b", "care-100k"): (33_333, (16_666, 10_000, 6_667), "2026-06-21", "2026-06-30", "pending", "stipend"),
    }
    assert {c["member_id"] for k, c in paid.items() if k[0] == "w-a"} == {care["w-a"]}
    assert buckets(admin, care["w-a"]) == (95_000, 57_000, 38_000)
    assert buckets(admin, care["w-b"]) == (31_666, 19_000, 12_667)
    assert totals(admin, care["w-c"]) == {"pending_minor": 0, "available_minor": 0, "held_minor": 0}
    assert_books_balance(admin)


def test_running_close_remittances_again_pays_nothing_more(
        admin: Caller, care: dict[str, str], database: Database, clock: Clock) -> None:
    """DOMAIN.md "Accrual": each member and period is paid once: the same key again (200),
    a later date in the same month, the job function itself and ``pay_period`` all pay nothing."""
    first = run(admin, "close_remittances", "2026-06-30")
    (rem,) = remittances_of(admin, "care")

    again = run(admin, "close_remittances", "2026-06-30", status=200)
    later = run(admin, "close_remittances")  # through 14 July: July is not over
    direct = close_through(database, date(2026, 6, 30), UTC_ZONE, 15, clock)
    paid = [database.transaction(lambda s, p=plan: pay_period(s, p, date(2026, 6, 1), date(2026, 6, 30),
                                                                UTC_ZONE, 15, clock.now))
            for plan in ("care-90k", "care-100k")]

    assert again == first
    assert (later["counts"]["stipends"], later["counts"]["stipend_minor"]) == (0, 0)
    assert (direct["stipends"], direct["stipend_minor"]) == (0, 0)
    assert paid == [(0, 0), (0, 0)]
    assert remittances_of(admin, "care") == [rem]
    assert len(stipends_in(admin, rem["id"])) == 4
    assert buckets(admin, care["w-a"]) == (95_000, 57_000, 38_000)
    assert buckets(admin, care["w-b"]) == (31_666, 19_000, 12_667)
    assert_books_balance(admin)


def test_two_processes_closing_june_at_once_pay_each_stipend_once(
        admin: Caller, care: dict[str, str], database: Database, second_database: Database, clock: Clock) -> None:
    """``pay_period`` locks the plan row: two processes (two engines) closing June at the same
    moment pay the four stipends once between them."""
    results = together([lambda db=db: close_through(db, date(2026, 6, 30), UTC_ZONE, 15, clock)
                        for db in (database, second_database)])

    assert not [r for r in results if isinstance(r, Exception)], results
    # each plan's period is paid by whichever process locks that plan first
    assert (sum(r["stipends"] for r in results), sum(r["stipend_minor"] for r in results)) == (4, 253_333)
    (rem,) = remittances_of(admin, "care")
    assert (rem["amount_due_minor"], rem["line_count"]) == (253_333, 4)
    assert buckets(admin, care["w-b"]) == (31_666, 19_000, 12_667)
    assert_books_balance(admin)


def test_funded_stipends_become_available_and_july_s_stipends_posted_in_august_go_into_august_s_remittance(
        admin: Caller, care: dict[str, str], clock: Clock) -> None:
    """The employer funds July's remittance (June's stipends) in full while it is still open:
    every stipend becomes available, and it reads ``funded`` once July is over. At July's
    end all three are paid for July, C (enrolled 2 July) 30 of 31 days: 870.97 and 967.74,
    posted on 1 August into a new remittance for August, open, due 15 September."""
    run(admin, "close_remittances", "2026-06-30")
    (july,) = remittances_of(admin, "care")
    record_funds(admin, july["id"], 253_333, clock, "care-june")
    assert money(remittance(admin, july["id"])) == ("open", 253_333, 253_333, 0, 0)
    assert buckets(admin, care["w-b"], "available") == (31_666, 19_000, 12_667)
    assert_books_balance(admin)

    clock.now = at("2026-08-01T12:00")
    body = run(admin, "close_remittances")

    assert body["counts"]["stipends"] == 6
    assert body["counts"]["stipend_minor"] == 2 * 190_000 + 87_097 + 96_774
    assert (body["counts"]["remittances_closed"], body["counts"]["remittances_overdue"]) == (1, 0)  # July's
    old, august = remittances_of(admin, "care")
    assert old["id"] == july["id"]
    assert money(old) == ("funded", 253_333, 253_333, 0, 0)
    assert (old["line_count"], old["due_date"]) == (4, "2026-08-15")
    assert money(august) == ("open", 563_871, 0, 563_871, 0)
    assert (august["line_count"], august["due_date"]) == (6, "2026-09-15")
    paid = stipends_in(admin, august["id"])
    assert {k: (c["amount_minor"], c["period_start"]) for k, c in paid.items() if k[0] == "w-c"} == {
        ("w-c", "care-90k"): (87_097, "2026-07-02"), ("w-c", "care-100k"): (96_774, "2026-07-02")}
    assert totals(admin, care["w-c"])["pending_minor"] == 87_097 + 96_774
    assert_books_balance(admin)


def test_a_quarterly_stipend_is_pro_rated_over_the_quarter_and_lands_in_the_month_it_is_posted_in(
        app: Flask, admin: Caller, clock: Clock) -> None:
    """A quarterly plan of 910.00 from 1 April: enrolled before the quarter -> 91,000;
    enrolled 12 May -> 50 of Q2's 91 days -> 50,000; posted on 15 July, in the July
    remittance, open, due 15 August."""
    clock.now = at("2026-03-20T12:00")
    key = employer(app, admin, **{"care-q": {"amount_minor": 91_000, "period": "quarter",
                                             "effective_from": "2026-04-01"}})
    early = enroll(key, "w-early")
    clock.now = at("2026-05-12T09:00")
    late = enroll(key, "w-late")
    clock.now = at("2026-07-15T12:00")

    body = run(admin, "close_remittances", "2026-06-30")

    assert (body["counts"]["stipends"], body["counts"]["stipend_minor"]) == (2, 141_000)
    (rem,) = remittances_of(admin, "care")
    assert (rem["status"], rem["amount_due_minor"], rem["line_count"], rem["due_date"]) == (
        "open", 141_000, 2, "2026-08-15")
    paid = stipends_in(admin, rem["id"])
    assert {k[0]: (c["member_id"], c["amount_minor"], c["period_start"], c["period_end"]) for k, c in paid.items()} == {
        "w-early": (early, 91_000, "2026-04-01", "2026-06-30"), "w-late": (late, 50_000, "2026-05-12", "2026-06-30")}
    assert_books_balance(admin)


def test_a_member_with_two_worker_refs_at_the_employer_is_paid_once_from_the_first_enrollment(
        app: Flask, admin: Caller, clock: Clock) -> None:
    """DOMAIN.md "Contributions": a member's several ``worker_ref``s at one contributor count
    as one member: one stipend, by the days since the first enrollment."""
    clock.now = at("2026-06-11T12:00")
    key = employer(app, admin, **{"care-90k": {"amount_minor": 90_000, "effective_from": "2026-06-01"}})
    member_id = enroll(key, "w-1")
    clock.now = at("2026-06-25T12:00")
    second = admin.post("/v1/enrollments", {"contributor_id": "care", "worker_ref": "w-1b", "member_id": member_id})
    assert second.status_code == 201, second.json
    clock.now = at("2026-07-15T12:00")

    body = run(admin, "close_remittances", "2026-06-30")

    assert (body["counts"]["stipends"], body["counts"]["stipend_minor"]) == (1, 60_000)  # 20 of 30 days
    assert totals(admin, member_id)["pending_minor"] == 60_000
    assert_books_balance(admin)


def test_a_stipend_plan_in_member_election_mode_follows_the_member_s_election(
        app: Flask, admin: Caller, clock: Clock) -> None:
    """DOMAIN.md "Contributions" (allocation): the member's election when the plan is in
    ``member_election`` mode, else the plan's allocation."""
    clock.now = at("2026-05-20T12:00")
    key = employer(app, admin, **{"care-el": {"amount_minor": 90_000, "allocation_mode": "member_election",
                                              "effective_from": "2026-06-01"}})
    elected, default = enroll(key, "w-1"), enroll(key, "w-2")
    response = admin.put(f"/v1/members/{elected}/allocation", {"healthcare": 0, "retirement": 10_000, "training": 0})
    assert response.status_code == 200, response.json
    clock.now = at("2026-07-15T12:00")

    run(admin, "close_remittances", "2026-06-30")

    assert buckets(admin, elected) == (0, 90_000, 0)
    assert buckets(admin, default) == (45_000, 27_000, 18_000)
    assert_books_balance(admin)


def test_a_stipend_plan_starting_mid_month_pays_only_the_days_from_its_effective_date(
        app: Flask, admin: Caller, clock: Clock) -> None:
    """A plan does not exist before its ``effective_from`` (DOMAIN.md "Contributions": a new
    rate is a new plan with its own ``effective_from``): a 900.00 monthly stipend from 16 June
    pays a member enrolled since May the 15 of June's 30 days it was in force, 45,000."""
    clock.now = at("2026-05-20T12:00")
    key = employer(app, admin, **{"care-mid": {"amount_minor": 90_000, "effective_from": "2026-06-16"}})
    member_id = enroll(key, "w-1")
    clock.now = at("2026-07-15T12:00")

    body = run(admin, "close_remittances", "2026-06-30")

    assert (body["counts"]["stipends"], body["counts"]["stipend_minor"]) == (1, 45_000)
    assert totals(admin, member_id)["pending_minor"] == 45_000
    assert_books_balance(admin)


def test_a_schedule_plan_takes_no_reports_and_pays_no_other_contributor_s_workers(
        app: Flask, admin: Caller, clock: Clock) -> None:
    """DOMAIN.md "Accrual": such a plan takes no earnings reports (422 on ``plan_id``); it
    pays members enrolled with *that* contributor only."""
    clock.now = at("2026-05-20T12:00")
    key = employer(app, admin, **{"care-90k": {"amount_minor": 90_000, "effective_from": "2026-06-01"}})
    ours = enroll(key, "w-1")
    dash = platform(app, admin, "dash", **{"dash-4pct": {}})
    theirs = enroll(dash, "w-1")
    clock.now = at("2026-06-20T12:00")

    refused = key.post("/v1/contributions", line("june-1", "w-1", "care-90k", 100_000, "2026-06-01", "2026-06-20"))
    clock.now = at("2026-07-15T12:00")
    run(admin, "close_remittances", "2026-06-30")

    assert (refused.status_code, list(refused.json["errors"])) == (422, ["plan_id"])
    assert totals(admin, ours)["pending_minor"] == 90_000
    assert totals(admin, theirs)["pending_minor"] == 0
    assert remittances_of(admin, "dash") == []
    assert_books_balance(admin)


def test_days_enrolled_are_business_dates_in_the_fund_s_timezone(
        la_app: Flask, la_admin: Caller, clock: Clock) -> None:
    """DOMAIN.md "Accrual": business dates are in the fund's timezone. In Los Angeles an
    enrollment at 05:00Z on 1 June is 31 May (all of June: 90,000); at 03:00Z on 1 July it is
    still 30 June (1 of 30 days: 3,000); at 08:00Z on 1 July it is July (nothing for June).
    Posted on 15 July (05:00 in Los Angeles), they join July's remittance, due 15 August."""
    clock.now = at("2026-05-20T12:00")
    key = employer(la_app, la_admin, **{"care-90k": {"amount_minor": 90_000, "effective_from": "2026-06-01"}})
    members = {}
    for worker_ref, when in (("w-may", "2026-06-01T05:00"), ("w-june-30", "2026-07-01T03:00"),
                             ("w-july", "2026-07-01T08:00")):
        clock.now = at(when)
        members[worker_ref] = enroll(key, worker_ref)
    clock.now = at("2026-07-15T12:00")

    body = run(la_admin, "close_remittances", "2026-06-30")

    assert (body["counts"]["stipends"], body["counts"]["stipend_minor"]) == (2, 93_000)
    assert [totals(la_admin, members[w])["pending_minor"] for w in ("w-may", "w-june-30", "w-july")] == [
        90_000, 3_000, 0]
    (rem,) = remittances_of(la_admin, "care")
    assert (rem["status"], rem["due_date"], rem["amount_due_minor"], rem["line_count"]) == (
        "open", "2026-08-15", 93_000, 2)
    assert_books_balance(la_admin)


def test_a_monthly_remittance_is_open_until_its_month_ends_then_awaiting_funds_then_overdue_while_short(
        app: Flask, admin: Caller, clock: Clock) -> None:
    """API.md "Remittance": a monthly remittance is ``open`` until its month is over, then
    ``awaiting_funds`` with due date day 15 (``PBL_REMITTANCE_DUE_DAY``) of the next month,
    ``overdue`` after it while short; ``close_remittances`` counts what closed and what
    fell overdue in its dates."""
    dash = platform(app, admin, "dash", **{"dash-4pct": {}})
    enroll(dash, "w-1")
    made = contribute(dash, line("july-1", "w-1", "dash-4pct", 100_000, "2026-07-01", "2026-07-15"))
    rem_id = made["remittance_id"]
    assert (made["amount_minor"], remittance(admin, rem_id)["due_date"]) == (4_000, "2026-08-15")

    def status_at(when: str) -> str:
        clock.now = at(when)
        return str(remittance(admin, rem_id)["status"])

    assert status_at("2026-07-31T23:59") == "open"
    assert status_at("2026-08-01T00:00") == "awaiting_funds"
    clock.now = at("2026-08-01T12:00")
    closed = run(admin, "close_remittances")
    assert (closed["through"], closed["counts"]["remittances_closed"], closed["counts"]["remittances_overdue"]) == (
        "2026-07-31", 1, 0)
    assert_books_balance(admin)

    record_funds(admin, rem_id, 1_000, clock, "dash-part")
    assert money(remittance(admin, rem_id)) == ("partially_funded", 4_000, 1_000, 3_000, 0)
    assert status_at("2026-08-15T23:59") == "partially_funded"
    assert status_at("2026-08-16T00:00") == "overdue"
    clock.now = at("2026-08-16T12:00")
    on_due_date = run(admin, "close_remittances")  # through the 15th: not overdue yet
    clock.now = at("2026-08-17T12:00")
    after_due_date = run(admin, "close_remittances")  # through the 16th
    assert (on_due_date["counts"]["remittances_closed"], on_due_date["counts"]["remittances_overdue"]) == (0, 0)
    assert (after_due_date["counts"]["remittances_closed"], after_due_date["counts"]["remittances_overdue"]) == (0, 1)
    assert admin.get("/v1/remittances?status=overdue").json["data"][0]["id"] == rem_id
    assert_books_balance(admin)

    record_funds(admin, rem_id, 3_000, clock, "dash-rest")
    assert money(remittance(admin, rem_id)) == ("funded", 4_000, 4_000, 0, 0)
    assert_books_balance(admin)


def test_the_due_day_follows_pbl_remittance_due_day(
        database_url: str, database: Database, clock: Clock) -> None:
    """API.md: the due date is day ``PBL_REMITTANCE_DUE_DAY`` of the month after closing (here 20)."""
    app = create_app(Settings(database_url=database_url, remittance_due_day=20), database, clock)
    row, secret = create_key(database, "admin", "admin", clock.now)
    admin = Caller(app.test_client(), secret, row.id)
    dash = platform(app, admin, "dash", **{"dash-4pct": {}})
    enroll(dash, "w-1")
    rem_id = contribute(dash, line("july-1", "w-1", "dash-4pct", 100_000, "2026-07-01", "2026-07-15"))["remittance_id"]

    clock.now = at("2026-08-20T23:59")
    on_due_day = remittance(admin, rem_id)
    clock.now = at("2026-08-21T00:00")
    after = remittance(admin, rem_id)

    assert (on_due_day["due_date"], on_due_day["status"], after["status"]) == (
        "2026-08-20", "awaiting_funds", "overdue")
    clock.now = at("2026-08-22T12:00")
    body = run(admin, "close_remittances")
    assert (body["counts"]["remittances_closed"], body["counts"]["remittances_overdue"]) == (1, 1)
