"""DOMAIN.md "Accrual" in exact minor units: the crediting rate on each business date's
end-of-day available balance, actual/365, kept as a numerator over 3,650,000 (never rounded
day by day), whole units posted on a month's last date effective the first instant of the
next month; keyed by business date so nothing accrues or posts twice; business dates in
the fund's timezone, across daylight-saving changes.

Money is made available through the API (a 100% healthcare plan, funded by a bank
transfer), accrual runs through ``POST /v1/jobs/accrual/runs`` (or ``run_job`` /
``accrue_through`` for the races), and each test reads balances and entries through the
API and the ``accruals`` row from the database.
"""

from __future__ import annotations

from datetime import date, timedelta
from zoneinfo import ZoneInfo

from flask import Flask

from jobs.accrual import accrue_through
from jobs.runs import JobContext, run_job
from ledger.db import Database
from ledger.errors import ConflictError
from tests.conftest import Caller, Clock
from tests.jobs.conftest import (
    DAY,
    FULL_PAY,
    LOS_ANGELES,
    accrual_row,
    at,
    available,
    first_instant,
    interest_entries,
    make_available,
    month_end,
    payer,
    run,
    set_rate,
    simulate,
    together,
)
from tests.scenarios.helpers import assert_books_balance, platform

UTC_ZONE = ZoneInfo("UTC")


def thousand_in_may(app: Flask, admin: Caller, clock: Clock, bps: int = 400) -> str:
    """1,000.00 available in healthcare since 30 April 2026, a rate of ``bps`` from 1 May;
    the clock on 1 June 12:00 UTC. Returns the member id."""
    clock.now = at("2026-04-30T12:00")
    member_id = make_available(admin, payer(app, admin), clock, "w-1", 100_000)
    set_rate(admin, "healthcare", bps, "2026-05-01")
    clock.now = at("2026-06-01T12:00")
    return member_id


def test_1000_at_4pct_for_the_31_days_of_may_posts_339_on_1_june_and_carries_2_650_000(
        app: Flask, admin: Caller, clock: Clock, database: Database) -> None:
    """DOMAIN.md "Accrual": 1,000.00 at 4.00% for 31 days is 339.7260... -> 339 posted,
    effective the first instant of the next month; carry 2,650,000 / 3,650,000."""
    member_id = thousand_in_may(app, admin, clock)

    body = run(admin, "accrual")  # through yesterday: 31 May

    assert (body["key"], body["through"], body["status"]) == ("accrual:2026-05-31", "2026-05-31", "succeeded")
    # 30 April (available that day, no rate yet) then the 31 days of May
    assert body["counts"] == {"from": "2026-04-30", "dates": 32, "buckets": 1, "postings": 1,
                              "interest_minor": {"USD": 339}}
    assert available(admin, member_id) == (100_339, 0, 0)
    assert available(admin, member_id, as_of="2026-05-31T23:59:59Z") == (100_000, 0, 0)
    assert available(admin, member_id, as_of="2026-06-01T00:00:00Z") == (100_339, 0, 0)
    (interest,) = interest_entries(admin, member_id)
    assert (interest["bucket"], interest["balance"], interest["amount_minor"], interest["balance_after_minor"],
            interest["effective_at"], interest["contributor_id"]) == (
        "healthcare", "available", 339, 100_339, "2026-06-01T00:00:00Z", None)
    row = accrual_row(database, member_id)
    assert (row.last_accrued_date, row.carry_numerator, row.accrued_minor) == (date(2026, 5, 31), 2_650_000, 0)
    assert 339 * DAY + row.carry_numerator == 31 * 100_000 * 400
    assert_books_balance(admin)


def test_100_at_1bp_from_1_january_posts_0_every_month_until_december_which_posts_1(
        app: Flask, admin: Caller, clock: Clock, database: Database) -> None:
    """DOMAIN.md "Accrual": 100.00 at 1 bp from 1 January of a 365-day year (2025): each
    day adds 10,000 / 3,650,000; every month posts 0 until December, which posts 1 (the
    year's carry is exactly one minor unit), effective 1 January 00:00."""
    clock.now = at("2024-12-31T12:00")
    member_id = make_available(admin, payer(app, admin), clock, "w-1", 10_000)
    set_rate(admin, "healthcare", 1, "2025-01-01")
    clock.now = at("2026-01-02T12:00")

    days = 0
    for month in range(1, 13):
        end = month_end(date(2025, month, 1))
        days += end.day
        body = run(admin, "accrual", end.isoformat())
        row = accrual_row(database, member_id)
        assert row.last_accrued_date == end
        if month < 12:
            assert (body["counts"]["postings"], body["counts"]["interest_minor"]) == (0, {}), end
            assert (row.accrued_minor, row.carry_numerator) == (0, days * 10_000), end
            assert interest_entries(admin, member_id) == []
        else:
            assert (body["counts"]["postings"], body["counts"]["interest_minor"]) == (1, {"USD": 1})
            assert (row.accrued_minor, row.carry_numerator) == (0, 0)
        assert_books_balance(admin)

    assert days == 365
    (interest,) = interest_entries(admin, member_id)
    assert (interest["amount_minor"], interest["effective_at"]) == (1, "2026-01-01T00:00:00Z")
    assert available(admin, member_id) == (10_001, 0, 0)
    assert available(admin, member_id, as_of="2025-12-31") == (10_000, 0, 0)


def test_running_accrual_again_for_a_date_answers_200_with_the_same_run_and_posts_nothing(
        app: Flask, admin: Caller, clock: Clock, database: Database) -> None:
    """DOMAIN.md "Accrual": keyed by business date, running the job again for a date posts
    nothing (API.md: a key that already succeeded -> 200 with that run)."""
    member_id = thousand_in_may(app, admin, clock)
    first = run(admin, "accrual", "2026-05-31")
    entries_before = admin.get(f"/v1/members/{member_id}/entries").json["data"]
    row_before = accrual_row(database, member_id)
    clock.now = at("2026-06-01T13:00")

    again = run(admin, "accrual", "2026-05-31", status=200)
    default = run(admin, "accrual", status=200)  # yesterday is still 31 May

    assert again == first
    assert default["id"] == first["id"]
    assert admin.get(f"/v1/members/{member_id}/entries").json["data"] == entries_before
    assert accrual_row(database, member_id) == row_before
    assert available(admin, member_id) == (100_339, 0, 0)
    listed = admin.get("/v1/jobs/runs?name=accrual").json["data"]
    assert [r["id"] for r in listed] == [first["id"]]
    assert_books_balance(admin)


def test_accrue_through_a_date_already_accrued_touches_nothing(
        app: Flask, admin: Caller, clock: Clock, database: Database) -> None:
    """The job itself, not only the run key, counts each date once: calling it again (as a
    run with a new key reaching back, or a failed run retried, would) finds nothing due."""
    member_id = thousand_in_may(app, admin, clock)
    accrue_through(database, date(2026, 5, 31), UTC_ZONE, clock)
    row = accrual_row(database, member_id)

    for through in (date(2026, 5, 31), date(2026, 5, 15)):
        counts = accrue_through(database, through, UTC_ZONE, clock)
        assert counts == {"from": None, "dates": 0, "buckets": 0, "postings": 0, "interest_minor": {}}

    assert accrual_row(database, member_id) == row
    assert [e["amount_minor"] for e in interest_entries(admin, member_id)] == [339]
    assert_books_balance(admin)


def test_two_processes_accruing_the_same_dates_at_once_post_the_interest_once(
        app: Flask, admin: Caller, clock: Clock, database: Database, second_database: Database) -> None:
    """DESIGN.md "Jobs": a bucket's last accrued date makes each date count once, so two
    processes (two engines, two threads) running ``accrue_through`` over the same dates
    accrue each date once and post May's interest once."""
    member_id = thousand_in_may(app, admin, clock)

    results = together([lambda db=db: accrue_through(db, date(2026, 5, 31), UTC_ZONE, clock)
                        for db in (database, second_database)])

    assert not [r for r in results if isinstance(r, Exception)], results
    assert sum(r["postings"] for r in results) == 1
    assert sum(r["interest_minor"].get("USD", 0) for r in results) == 339
    assert [e["amount_minor"] for e in interest_entries(admin, member_id)] == [339]
    row = accrual_row(database, member_id)
    assert (row.last_accrued_date, row.carry_numerator, row.accrued_minor) == (date(2026, 5, 31), 2_650_000, 0)
    assert available(admin, member_id) == (100_339, 0, 0)
    assert_books_balance(admin)


def test_two_processes_running_the_same_accrual_key_at_once_post_the_interest_once(
        app: Flask, admin: Caller, clock: Clock, database: Database, second_database: Database) -> None:
    """DESIGN.md "Jobs": the key ``accrual:2026-05-31`` is claimed once: one ``run_job``
    runs it, the other finds it running (ConflictError) or already succeeded."""
    member_id = thousand_in_may(app, admin, clock)
    contexts = [JobContext(db, clock, UTC_ZONE) for db in (database, second_database)]

    results = together([lambda c=c: run_job(c, "accrual", date(2026, 5, 31)) for c in contexts])

    ran = [r for r in results if not isinstance(r, Exception) and r[1]]
    others = [r for r in results if isinstance(r, Exception) or not r[1]]
    assert len(ran) == 1 and len(others) == 1, results
    other = others[0]
    assert isinstance(other, ConflictError) or other[0].id == ran[0][0].id, other
    assert ran[0][0].status == "succeeded"
    assert [e["amount_minor"] for e in interest_entries(admin, member_id)] == [339]
    assert accrual_row(database, member_id).carry_numerator == 2_650_000
    listed = admin.get("/v1/jobs/runs?name=accrual").json["data"]
    assert [(r["key"], r["status"], r["attempts"]) for r in listed] == [("accrual:2026-05-31", "succeeded", 1)]
    assert_books_balance(admin)


def test_a_rate_change_mid_month_applies_from_its_effective_date(
        app: Flask, admin: Caller, clock: Clock, database: Database) -> None:
    """DOMAIN.md "Accrual": rates are effective-dated. 1,000.00 at 4% for 1-15 May and 8%
    for 16-31 May: 100,000 x (400 x 15 + 800 x 16) = 1,880,000,000 -> 515 posted, carry 250,000."""
    member_id = thousand_in_may(app, admin, clock)
    set_rate(admin, "healthcare", 800, "2026-05-16")

    body = run(admin, "accrual", "2026-05-31")

    assert body["counts"]["interest_minor"] == {"USD": 515}
    row = accrual_row(database, member_id)
    assert (row.carry_numerator, row.accrued_minor) == (250_000, 0)
    assert 515 * DAY + 250_000 == 100_000 * (400 * 15 + 800 * 16)
    assert [e["amount_minor"] for e in interest_entries(admin, member_id)] == [515]
    assert available(admin, member_id) == (100_515, 0, 0)
    assert_books_balance(admin)


def test_a_rate_posted_after_a_date_was_accrued_does_not_change_that_date(
        app: Flask, admin: Caller, clock: Clock, database: Database) -> None:
    """API.md: a crediting rate "applies to dates not yet accrued". 1-10 May accrue at 4%;
    then 8% is posted effective 5 May: 11-31 May earn 8%, 5-10 May keep 4%.
    100,000 x (400 x 10 + 800 x 21) = 2,080,000,000 -> 569 posted, carry 3,150,000."""
    member_id = thousand_in_may(app, admin, clock)
    run(admin, "accrual", "2026-05-10")
    assert accrual_row(database, member_id).numerator == 100_000 * 400 * 10

    set_rate(admin, "healthcare", 800, "2026-05-05")
    assert accrual_row(database, member_id).numerator == 100_000 * 400 * 10  # nothing recomputed
    body = run(admin, "accrual", "2026-05-31")

    assert (body["counts"]["from"], body["counts"]["dates"]) == ("2026-05-11", 21)
    assert body["counts"]["interest_minor"] == {"USD": 569}
    row = accrual_row(database, member_id)
    assert (row.carry_numerator, row.accrued_minor) == (3_150_000, 0)
    assert 569 * DAY + 3_150_000 == 100_000 * (400 * 10 + 800 * 21)
    assert_books_balance(admin)


def test_each_bucket_earns_its_own_rate(app: Flask, admin: Caller, clock: Clock, database: Database) -> None:
    """DOMAIN.md "Accrual": a rate per bucket. 1,000.00 split 50/30/20, May at 4% / 2% / none:
    healthcare 50,000 x 400 x 31 = 620,000,000 -> 169, carry 3,150,000; retirement
    30,000 x 200 x 31 = 186,000,000 -> 50, carry 3,500,000; training nothing."""
    clock.now = at("2026-04-30T12:00")
    caller = platform(app, admin, "acme", **{"acme-split": {"rate_bps": 10_000, "effective_from": "2020-01-01"}})
    member_id = make_available(admin, caller, clock, "w-1", 100_000, plan_id="acme-split")
    assert available(admin, member_id) == (50_000, 30_000, 20_000)
    set_rate(admin, "healthcare", 400, "2026-05-01")
    set_rate(admin, "retirement", 200, "2026-05-01")
    clock.now = at("2026-06-01T12:00")

    body = run(admin, "accrual")

    assert body["counts"]["interest_minor"] == {"USD": 169 + 50}
    assert available(admin, member_id) == (50_169, 30_050, 20_000)
    assert [(r.carry_numerator, r.accrued_minor) for r in
            (accrual_row(database, member_id, b) for b in ("healthcare", "retirement", "training"))] == [
        (3_150_000, 0), (3_500_000, 0), (0, 0)]
    assert sorted((e["bucket"], e["amount_minor"]) for e in interest_entries(admin, member_id)) == [
        ("healthcare", 169), ("retirement", 50)]
    assert_books_balance(admin)


def test_money_recorded_later_accrues_from_the_end_of_the_date_it_was_recorded_not_received(
        app: Flask, admin: Caller, clock: Clock, database: Database) -> None:
    """DOMAIN.md "Accrual": money becomes available when it is recorded (not at an earlier
    ``received_at``), so it starts to accrue from the end of that business date. Accrual has
    run through 10 May for a first member; 500.00 received 4 May is recorded on 11 May: it
    earns 11-31 May only, 50,000 x 400 x 21 = 420,000,000 -> 115, carry 250,000; the first
    member's May is still 339."""
    caller = payer(app, admin)
    clock.now = at("2026-04-30T12:00")
    first = make_available(admin, caller, clock, "w-1", 100_000)
    set_rate(admin, "healthcare", 400, "2026-05-01")
    clock.now = at("2026-05-11T12:00")
    run(admin, "accrual", "2026-05-10")
    second = make_available(admin, caller, clock, "w-2", 50_000, received_at=at("2026-05-04T09:00"))
    clock.now = at("2026-06-01T12:00")

    body = run(admin, "accrual")

    assert (body["counts"]["from"], body["counts"]["dates"], body["counts"]["buckets"]) == ("2026-05-11", 21, 2)
    assert body["counts"]["interest_minor"] == {"USD": 339 + 115}
    assert [e["amount_minor"] for e in interest_entries(admin, first)] == [339]
    assert [e["amount_minor"] for e in interest_entries(admin, second)] == [115]
    row = accrual_row(database, second)
    assert (row.last_accrued_date, row.carry_numerator, row.accrued_minor) == (date(2026, 5, 31), 250_000, 0)
    assert accrual_row(database, first).carry_numerator == 2_650_000
    assert_books_balance(admin)


def test_interest_is_posted_per_currency_from_that_currency_s_interest_expense(
        app: Flask, admin: Caller, clock: Clock, database: Database) -> None:
    """DOMAIN.md "Money": nothing converts between currencies. 1,000.00 USD and 100,000 JPY
    at 4% for May each earn 339 of their own minor units, in two balanced transactions."""
    clock.now = at("2026-04-30T12:00")
    dollars = make_available(admin, payer(app, admin), clock, "w-1", 100_000)
    yen_key = platform(app, admin, "yen", currency="JPY", **{"yen-full": FULL_PAY})
    yen = make_available(admin, yen_key, clock, "y-1", 100_000, plan_id="yen-full", currency="JPY")
    set_rate(admin, "healthcare", 400, "2026-05-01")
    clock.now = at("2026-06-01T12:00")

    body = run(admin, "accrual")

    assert (body["counts"]["postings"], body["counts"]["interest_minor"]) == (2, {"USD": 339, "JPY": 339})
    assert available(admin, dollars) == (100_339, 0, 0)
    assert available(admin, yen, currency="JPY") == (100_339, 0, 0)
    assert available(admin, yen) == (0, 0, 0)
    trial = {row["currency"]: row for row in admin.get("/v1/ledger/trial-balance").json["currencies"]}
    assert set(trial) == {"USD", "JPY"}
    assert_books_balance(admin)


def la_member(la_app: Flask, la_admin: Caller, clock: Clock, local_noon_utc: str) -> str:
    """1,000.00 made available in healthcare at ``local_noon_utc`` under a Los Angeles fund, 4% since 2022."""
    clock.now = at(local_noon_utc)
    member_id = make_available(la_admin, payer(la_app, la_admin), clock, "w-1", 100_000, tz=LOS_ANGELES)
    set_rate(la_admin, "healthcare", 400, "2022-01-01")
    return member_id


def test_los_angeles_spring_forward_accrues_each_business_date_once(
        la_app: Flask, la_admin: Caller, clock: Clock, database: Database) -> None:
    """DOMAIN.md "Accrual": business dates in the fund's timezone; a daylight-saving change
    never skips or repeats a date. Available 12 March 2022 (Los Angeles), accrued through
    the 14th (13 March has 23 hours): 3 dates, numerator exactly 3 x 100,000 x 400."""
    member_id = la_member(la_app, la_admin, clock, "2022-03-12T20:00")  # 12:00 PST
    clock.now = at("2022-03-15T07:30")  # 00:30 PDT on the 15th: the 14th is over

    body = run(la_admin, "accrual")

    assert (body["through"], body["counts"]["from"], body["counts"]["dates"]) == ("2022-03-14", "2022-03-12", 3)
    row = accrual_row(database, member_id)
    assert row.last_accrued_date == date(2022, 3, 14)
    assert row.numerator == 3 * 100_000 * 400
    assert (row.accrued_minor, row.carry_numerator) == (32, 3_200_000)
    assert_books_balance(la_admin)


def test_los_angeles_fall_back_accrues_each_business_date_once(
        la_app: Flask, la_admin: Caller, clock: Clock, database: Database) -> None:
    """DOMAIN.md "Accrual": 6 November 2022 has 25 hours in Los Angeles and is still one
    date. Available the 5th, accrued through the 7th: 3 dates, numerator 3 x 100,000 x 400."""
    member_id = la_member(la_app, la_admin, clock, "2022-11-05T19:00")  # 12:00 PDT
    clock.now = at("2022-11-08T08:30")  # 00:30 PST on the 8th

    body = run(la_admin, "accrual")

    assert (body["through"], body["counts"]["from"], body["counts"]["dates"]) == ("2022-11-07", "2022-11-05", 3)
    row = accrual_row(database, member_id)
    assert row.last_accrued_date == date(2022, 11, 7)
    assert row.numerator == 3 * 100_000 * 400
    assert_books_balance(la_admin)


def test_los_angeles_a_date_not_over_there_is_not_accrued(
        la_app: Flask, la_admin: Caller, clock: Clock, database: Database) -> None:
    """DOMAIN.md "Accrual": a date is accrued only once it is over, in the fund's timezone:
    at 06:30 UTC on 16 March it is still the 15th in Los Angeles."""
    la_member(la_app, la_admin, clock, "2022-03-12T20:00")
    clock.now = at("2022-03-16T06:30")  # 23:30 PDT on the 15th

    refused = la_admin.post("/v1/jobs/accrual/runs", {"through": "2022-03-15"})
    body = run(la_admin, "accrual")

    assert (refused.status_code, list(refused.json["errors"])) == (422, ["through"])
    assert body["through"] == "2022-03-14"


def test_los_angeles_month_end_postings_land_on_the_first_instant_of_the_next_month_there(
        la_app: Flask, la_admin: Caller, clock: Clock, database: Database) -> None:
    """DOMAIN.md "Accrual": each month's interest is posted on its last date (28 February
    2023, 29 February 2024, 30 April, 31 January...), effective the first instant of the
    next month in Los Angeles: 08:00Z in winter, 07:00Z in summer. The amounts compound
    monthly exactly as DOMAIN.md's rule computed by hand (``simulate``)."""
    member_id = la_member(la_app, la_admin, clock, "2022-12-15T20:00")
    clock.now = at("2024-05-02T12:00")

    body = run(la_admin, "accrual", "2024-04-30")

    expected, whole, carry = simulate(100_000, 400, date(2022, 12, 15), date(2024, 4, 30))
    assert body["counts"]["dates"] == (date(2024, 4, 30) - date(2022, 12, 15)).days + 1
    assert body["counts"]["postings"] == len(expected) == 17
    entries = interest_entries(la_admin, member_id)
    assert [(e["effective_at"], e["amount_minor"]) for e in entries] == [
        (first_instant(end + timedelta(days=1), LOS_ANGELES), amount) for end, amount in expected]
    by_month = {e["effective_at"]: e for e in entries}
    for when in ("2023-02-01T08:00:00Z", "2023-03-01T08:00:00Z", "2023-05-01T07:00:00Z",
                 "2024-02-01T08:00:00Z", "2024-03-01T08:00:00Z", "2024-05-01T07:00:00Z"):
        assert when in by_month, when
    # February 2024 has 29 dates: its posting is one day's interest bigger in numerator terms
    february = dict(expected)
    assert date(2024, 2, 29) in february and date(2024, 2, 28) not in february
    assert date(2023, 2, 28) in february
    row = accrual_row(database, member_id)
    assert (row.last_accrued_date, row.accrued_minor, row.carry_numerator) == (date(2024, 4, 30), whole, carry)
    assert whole == 0
    assert available(la_admin, member_id)[0] == 100_000 + sum(amount for _, amount in expected)
    assert_books_balance(la_admin)
