"""DOMAIN.md "Withdrawals" through the HTTP API, in exact cents.

A member spends from a bucket for its purpose: the withdrawal first holds its amount
(available drops, held rises), then an administrator completes it (the money leaves) or
cancels it (back to available). Never more than available. Yearly limits per bucket,
purpose and tax year (the calendar year of the request in the business timezone): what is
held or completed in the year plus the request may not pass the limit, raised by the
highest catch-up whose age is reached; an HSA limit depends on the member's coverage.
"""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest
import requests
from flask import Flask

from api.app import create_app
from ledger.config import Settings
from ledger.db import Database
from ledger.services.keys import create_key
from tests.conftest import Caller, Clock, new_caller
from tests.scenarios.helpers import assert_books_balance, get
from tests.scenarios.withdrawal_helpers import (
    act,
    balances,
    bank_platform,
    bucket,
    cash_minor,
    deposit,
    entries_of,
    funded_member,
    held,
    new_member,
    post_json,
    set_limit,
    withdraw,
    withdrawal_body,
    withdrawals_of,
    worker_ref_of,
)

#: DOMAIN.md's 2026 limits as a fund configures them
IRA_2026 = 750_000
IRA_CATCH_UP_50 = 110_000
HSA_SELF_2026 = 440_000
HSA_FAMILY_2026 = 875_000
HSA_CATCH_UP_55 = 100_000


@pytest.fixture
def bank(app: Flask, admin: Caller) -> Caller:
    """The "bank" platform: plans paying 100% of earnings into one bucket."""
    return bank_platform(app, admin)


@pytest.fixture
def limits_2026(admin: Caller) -> None:
    """DOMAIN.md's 2026 IRA and HSA limits."""
    set_limit(admin, "retirement", "ira_transfer", 2026, IRA_2026, [(50, IRA_CATCH_UP_50)])
    set_limit(admin, "healthcare", "hsa_transfer", 2026, HSA_SELF_2026, [(55, HSA_CATCH_UP_55)], coverage="self_only")
    set_limit(admin, "healthcare", "hsa_transfer", 2026, HSA_FAMILY_2026, [(55, HSA_CATCH_UP_55)], coverage="family")


def refused_for_limit(response: Any, max_allowed_minor: int) -> None:
    """422 ``limit_exceeded`` naming what is still allowed."""
    assert (response.status_code, response.json["type"]) == (422, "limit_exceeded"), response.json
    assert response.json["errors"]["max_allowed_minor"] == max_allowed_minor, response.json


# -- never more than available, even all at once -------------------------------------------


def test_ten_concurrent_withdrawals_of_3000_from_10000_hold_exactly_three_and_refuse_seven(
        app: Flask, admin: Caller, bank: Caller, clock: Clock, live_server: str) -> None:
    """"Never more than available": the bucket's accounts are locked before the balance is
    read, so 10 requests of 30.00 at once against 100.00 hold 90.00 and leave 10.00."""
    member_id = funded_member(admin, bank, clock, "healthcare", 10_000)
    member = new_caller(app, admin, "member", member_id=member_id)
    barrier = threading.Barrier(10)
    url = f"{live_server}/v1/members/{member_id}/withdrawals"

    def one(i: int) -> requests.Response:
        with requests.Session() as session:
            barrier.wait(timeout=30)
            return post_json(session, url, member.key, withdrawal_body("healthcare", 3_000, payee=f"Clinic {i}"))

    with ThreadPoolExecutor(max_workers=10) as pool:
        responses = list(pool.map(one, range(10)))

    assert Counter(r.status_code for r in responses) == {201: 3, 409: 7}, [r.json() for r in responses]
    assert {r.json()["type"] for r in responses if r.status_code == 409} == {"insufficient_funds"}
    assert [r.json()["amount_minor"] for r in responses if r.status_code == 201] == [3_000] * 3
    assert bucket(admin, member_id, "healthcare") == (1_000, 9_000, 0)
    rows = withdrawals_of(admin, member_id)
    assert sorted((w["status"], w["amount_minor"]) for w in rows) == [("held", 3_000)] * 3
    assert {w["id"] for w in rows} == {r.json()["id"] for r in responses if r.status_code == 201}
    moves = [e for e in entries_of(admin, member_id) if e["bucket"] == "healthcare"]
    assert all(e["balance_after_minor"] >= 0 for e in moves), moves
    available_after = [e["balance_after_minor"] for e in reversed(moves) if e["balance"] == "available"]
    assert available_after == [10_000, 7_000, 4_000, 1_000]
    assert_books_balance(admin)


def all_at_once(calls: list[Any]) -> list[requests.Response]:
    """Run the zero-argument ``calls`` on their own threads, released together by a barrier."""
    barrier = threading.Barrier(len(calls))

    def run(call: Any) -> requests.Response:
        barrier.wait(timeout=30)
        response: requests.Response = call()
        return response

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


def test_ten_concurrent_ira_withdrawals_never_pass_the_year_s_limit(
        admin: Caller, bank: Caller, clock: Clock, live_server: str, limits_2026: None) -> None:
    """The limit is read under the same lock as the balance: 10 requests of $1,000.00 at once
    against the $7,500.00 IRA limit (born 1986, $20,000.00 available) hold exactly 7; the 3
    refused each name the $500.00 left."""
    member_id = funded_member(admin, bank, clock, "retirement", 2_000_000, birth_year=1986)
    url = f"{live_server}/v1/members/{member_id}/withdrawals"

    def one() -> requests.Response:
        with requests.Session() as session:
            return post_json(session, url, admin.key, withdrawal_body("retirement", 100_000))

    responses = all_at_once([one] * 10)

    assert Counter(r.status_code for r in responses) == {201: 7, 422: 3}, [r.json() for r in responses]
    assert [(r.json()["type"], r.json()["errors"]["max_allowed_minor"]) for r in responses
            if r.status_code == 422] == [("limit_exceeded", 50_000)] * 3
    assert bucket(admin, member_id, "retirement") == (1_300_000, 700_000, 0)
    assert len(withdrawals_of(admin, member_id)) == 7
    assert_books_balance(admin)


def test_concurrent_completes_and_cancels_of_one_withdrawal_move_it_exactly_once(
        admin: Caller, bank: Caller, clock: Clock, live_server: str, database: Database) -> None:
    """5 completes and 5 cancels of one held withdrawal at once: one wins (200), nine get 409."""
    member_id = funded_member(admin, bank, clock, "training", 10_000)
    hold = held(admin, member_id, "training", 3_000)

    def one(action: str) -> requests.Response:
        with requests.Session() as session:
            return post_json(session, f"{live_server}/v1/withdrawals/{hold['id']}/{action}", admin.key, {})

    responses = all_at_once([lambda a=action: one(a) for action in ("complete", "cancel") * 5])

    assert Counter(r.status_code for r in responses) == {200: 1, 409: 9}, [r.json() for r in responses]
    (winner,) = [r.json() for r in responses if r.status_code == 200]
    assert get(admin, f"/v1/withdrawals/{hold['id']}")["status"] == winner["status"]
    expected = {"completed": ((7_000, 0, 0), 7_000), "cancelled": ((10_000, 0, 0), 10_000)}[winner["status"]]
    assert (bucket(admin, member_id, "training"), cash_minor(database)) == expected
    transitions = [e for e in entries_of(admin, member_id) if e["kind"] in ("withdrawal_completed",
                                                                            "withdrawal_cancelled")]
    assert len(transitions) == {"completed": 1, "cancelled": 2}[winner["status"]]
    assert_books_balance(admin)


def test_the_same_idempotency_key_holds_once_and_answers_the_first_withdrawal_again(
        admin: Caller, bank: Caller, clock: Clock) -> None:
    """API.md "Conventions": the same key, method, path and body returns the first answer."""
    member_id = funded_member(admin, bank, clock, "healthcare", 10_000)
    path = f"/v1/members/{member_id}/withdrawals"
    key = {"Idempotency-Key": "wd-2026-07-15-1"}

    first = admin.post(path, withdrawal_body("healthcare", 3_000), headers=key)
    again = admin.post(path, withdrawal_body("healthcare", 3_000), headers=key)
    other = admin.post(path, withdrawal_body("healthcare", 4_000), headers=key)

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json == first.json
    assert (other.status_code, other.json["type"]) == (400, "idempotency_error")
    assert bucket(admin, member_id, "healthcare") == (7_000, 3_000, 0)
    assert len(withdrawals_of(admin, member_id)) == 1


# -- yearly limits: IRA ------------------------------------------------------------------


def test_ira_member_born_1986_with_7000_moved_asking_800_is_refused_whole_naming_500(
        admin: Caller, bank: Caller, clock: Clock, limits_2026: None) -> None:
    """DOMAIN.md: 2026 IRA $7,500.00; a member born 1986 (40, no catch-up) with $7,000.00
    already moved (held or completed both count) asks for $800.00: refused whole, naming
    $500.00; nothing moves."""
    member_id = funded_member(admin, bank, clock, "retirement", 1_000_000, birth_year=1986)
    completed = held(admin, member_id, "retirement", 400_000)
    act(admin, completed["id"], "complete")
    held(admin, member_id, "retirement", 300_000)
    before = balances(admin, member_id)
    count = len(withdrawals_of(admin, member_id))

    response = withdraw(admin, member_id, "retirement", 80_000)

    refused_for_limit(response, 50_000)
    assert balances(admin, member_id) == before
    assert before["retirement"] == {"pending_minor": 0, "available_minor": 300_000, "held_minor": 300_000}
    assert len(withdrawals_of(admin, member_id)) == count == 2
    assert_books_balance(admin)


def test_ira_room_is_exactly_what_is_named_and_a_cancelled_withdrawal_gives_its_room_back(
        admin: Caller, bank: Caller, clock: Clock, limits_2026: None) -> None:
    """The named $500.00 can be moved exactly; then nothing is left (naming 0); a cancelled
    withdrawal is neither held nor completed, so it no longer counts."""
    member_id = funded_member(admin, bank, clock, "retirement", 1_000_000, birth_year=1986)
    first = held(admin, member_id, "retirement", 700_000)

    held(admin, member_id, "retirement", 50_000)
    refused_for_limit(withdraw(admin, member_id, "retirement", 1), 0)

    act(admin, first["id"], "cancel")
    refused_for_limit(withdraw(admin, member_id, "retirement", 700_001), 700_000)
    held(admin, member_id, "retirement", 700_000)
    assert bucket(admin, member_id, "retirement") == (250_000, 750_000, 0)


def test_ira_member_born_1974_may_move_8600_in_the_year_and_not_a_cent_more(
        admin: Caller, bank: Caller, clock: Clock, limits_2026: None) -> None:
    """DOMAIN.md: born 1974, 52 in 2026, reaches the $1,100.00 catch-up from 50: $8,600.00."""
    member_id = funded_member(admin, bank, clock, "retirement", 900_000, birth_year=1974)

    moved = held(admin, member_id, "retirement", 860_000)
    one_more = withdraw(admin, member_id, "retirement", 1)

    assert (moved["amount_minor"], moved["tax_year"], moved["purpose"]) == (860_000, 2026, "ira_transfer")
    refused_for_limit(one_more, 0)
    assert bucket(admin, member_id, "retirement") == (40_000, 860_000, 0)


def test_a_request_over_the_limit_and_over_the_balance_is_refused_for_the_limit(
        admin: Caller, bank: Caller, clock: Clock, limits_2026: None) -> None:
    """DOMAIN.md: "A request over the limit is refused for the limit even when it is also
    over the balance": 422 limit_exceeded, not 409; within the limit, over the balance: 409."""
    member_id = funded_member(admin, bank, clock, "retirement", 10_000, birth_year=1986)

    over_both = withdraw(admin, member_id, "retirement", 800_000)
    over_balance_only = withdraw(admin, member_id, "retirement", 10_001)

    refused_for_limit(over_both, IRA_2026)
    assert (over_balance_only.status_code, over_balance_only.json["type"]) == (409, "insufficient_funds")
    assert bucket(admin, member_id, "retirement") == (10_000, 0, 0)
    assert withdrawals_of(admin, member_id) == []


def test_a_member_without_a_birth_year_gets_no_catch_up(
        admin: Caller, bank: Caller, clock: Clock, limits_2026: None) -> None:
    """The age for catch-up is the tax year minus the birth year: none known, none applies."""
    member_id = funded_member(admin, bank, clock, "retirement", 0)

    refused_for_limit(withdraw(admin, member_id, "retirement", IRA_2026 + 1), IRA_2026)


# -- yearly limits: HSA by coverage -----------------------------------------------------------


def test_hsa_family_member_aged_55_may_move_9750_not_9750_01(
        admin: Caller, bank: Caller, clock: Clock, limits_2026: None) -> None:
    """HSA family $8,750.00 + $1,000.00 from 55: born 1971, 55 in 2026: $9,750.00."""
    member_id = funded_member(admin, bank, clock, "healthcare", 1_000_000, birth_year=1971, hsa_coverage="family")

    refused_for_limit(withdraw(admin, member_id, "healthcare", 975_001, "hsa_transfer"), 975_000)
    moved = held(admin, member_id, "healthcare", 975_000, "hsa_transfer")

    assert (moved["amount_minor"], moved["purpose"]) == (975_000, "hsa_transfer")
    assert bucket(admin, member_id, "healthcare") == (25_000, 975_000, 0)


def test_hsa_self_only_member_aged_54_gets_4400_without_the_catch_up(
        admin: Caller, bank: Caller, clock: Clock, limits_2026: None) -> None:
    """HSA self-only $4,400.00; the $1,000.00 catch-up starts at 55 and 2026 - 1972 = 54."""
    member_id = funded_member(admin, bank, clock, "healthcare", 1_000_000, birth_year=1972, hsa_coverage="self_only")

    refused_for_limit(withdraw(admin, member_id, "healthcare", 440_001, "hsa_transfer"), HSA_SELF_2026)
    held(admin, member_id, "healthcare", 440_000, "hsa_transfer")
    refused_for_limit(withdraw(admin, member_id, "healthcare", 1, "hsa_transfer"), 0)


def test_hsa_limits_count_only_hsa_transfers_not_the_bucket_s_other_purposes(
        admin: Caller, bank: Caller, clock: Clock, limits_2026: None) -> None:
    """Limits are per bucket AND purpose: premiums (no limit set) do not use HSA room."""
    member_id = funded_member(admin, bank, clock, "healthcare", 1_000_000, birth_year=1972, hsa_coverage="self_only")

    held(admin, member_id, "healthcare", 500_000, "premium")

    held(admin, member_id, "healthcare", 440_000, "hsa_transfer")
    assert bucket(admin, member_id, "healthcare") == (60_000, 940_000, 0)


@pytest.mark.parametrize(("birth_year", "allowed"), [(1971, 850_000), (1974, 800_000), (1977, 750_000)])
def test_catch_ups_do_not_add_up_the_highest_reached_applies(
        admin: Caller, bank: Caller, clock: Clock, birth_year: int, allowed: int) -> None:
    """Two catch-ups, $500.00 from 50 and $1,000.00 from 55: at 55 only the $1,000.00 applies
    (7,500 + 1,000 = 8,500.00, never 9,000.00); at 52 the $500.00; at 49 none."""
    set_limit(admin, "retirement", "ira_transfer", 2026, IRA_2026, [(55, 100_000), (50, 50_000)])
    member_id = funded_member(admin, bank, clock, "retirement", 0, birth_year=birth_year)

    refused_for_limit(withdraw(admin, member_id, "retirement", 900_000), allowed)


def test_hsa_catch_ups_do_not_add_up_either(admin: Caller, bank: Caller, clock: Clock) -> None:
    """HSA family with catch-ups from 50 ($300.00) and 55 ($1,000.00): aged 55 gets
    $8,750.00 + $1,000.00 = $9,750.00, not $10,050.00."""
    set_limit(admin, "healthcare", "hsa_transfer", 2026, HSA_FAMILY_2026, [(50, 30_000), (55, 100_000)],
              coverage="family")
    member_id = funded_member(admin, bank, clock, "healthcare", 2_000_000, birth_year=1971, hsa_coverage="family")

    refused_for_limit(withdraw(admin, member_id, "healthcare", 1_005_000, "hsa_transfer"), 975_000)


# -- the tax year is the business year -------------------------------------------------------


@pytest.fixture
def los_angeles(database_url: str, database: Database, clock: Clock) -> tuple[Flask, Caller]:
    """The API with ``PBL_TIMEZONE=America/Los_Angeles`` and an administrator on it."""
    la_app = create_app(Settings(database_url=database_url, timezone=ZoneInfo("America/Los_Angeles")), database,
                        clock)
    row, secret = create_key(database, "admin", "la admin", clock.now)
    return la_app, Caller(la_app.test_client(), secret, row.id)


def test_the_tax_year_is_the_calendar_year_of_the_request_in_the_business_timezone(
        los_angeles: tuple[Flask, Caller], clock: Clock) -> None:
    """At 2027-01-01T05:00Z it is still 31 December 2026 in Los Angeles: the request counts
    in 2026 and against 2026's limit; from 08:00Z (midnight there) it counts in 2027."""
    la_app, admin = los_angeles
    bank = bank_platform(la_app, admin)
    set_limit(admin, "retirement", "ira_transfer", 2026, 1_000)
    set_limit(admin, "retirement", "ira_transfer", 2027, 100_000)
    clock.now = datetime(2027, 1, 1, 5, 0, tzinfo=UTC)
    member_id = funded_member(admin, bank, clock, "retirement", 50_000, birth_year=1990, day="2026-12-31")

    refused_for_limit(withdraw(admin, member_id, "retirement", 2_000), 1_000)
    late_2026 = held(admin, member_id, "retirement", 1_000)
    clock.now = datetime(2027, 1, 1, 7, 59, 59, tzinfo=UTC)
    refused_for_limit(withdraw(admin, member_id, "retirement", 1), 0)
    clock.now = datetime(2027, 1, 1, 8, 0, tzinfo=UTC)
    early_2027 = held(admin, member_id, "retirement", 2_000)

    assert (late_2026["tax_year"], late_2026["created_at"]) == (2026, "2027-01-01T05:00:00Z")
    assert (early_2027["tax_year"], early_2027["created_at"]) == (2027, "2027-01-01T08:00:00Z")
    assert bucket(admin, member_id, "retirement") == (47_000, 3_000, 0)


# -- lifecycle --------------------------------------------------------------------------------


def withdrawal_moves(admin: Caller, member_id: str) -> list[tuple[str, str, str, int, int]]:
    """The member's withdrawal entries, oldest first: (kind, bucket, balance, amount, balance after)."""
    return [(e["kind"], e["bucket"], e["balance"], e["amount_minor"], e["balance_after_minor"])
            for e in reversed(entries_of(admin, member_id)) if e["kind"].startswith("withdrawal_")]


def test_held_then_completed_the_money_leaves_the_fund(
        admin: Caller, bank: Caller, clock: Clock, database: Database) -> None:
    """Hold: available -> held. Complete: held -> cash:bank, so held goes to 0 and the fund's
    cash drops by the amount."""
    member_id = funded_member(admin, bank, clock, "training", 10_000)
    assert cash_minor(database) == 10_000

    hold = held(admin, member_id, "training", 3_000)
    assert bucket(admin, member_id, "training") == (7_000, 3_000, 0)
    clock.now = datetime(2026, 7, 16, 9, 30, tzinfo=UTC)
    done = act(admin, hold["id"], "complete")

    assert (done["status"], done["completed_at"], done["cancelled_at"]) == ("completed", "2026-07-16T09:30:00Z", None)
    assert (done["amount_minor"], done["payee"], done["purpose"]) == (3_000, "Acme Custodian", "tuition")
    assert get(admin, f"/v1/withdrawals/{hold['id']}") == done
    assert bucket(admin, member_id, "training") == (7_000, 0, 0)
    assert cash_minor(database) == 7_000
    assert withdrawal_moves(admin, member_id) == [
        ("withdrawal_held", "training", "available", -3_000, 7_000),
        ("withdrawal_held", "training", "held", 3_000, 3_000),
        ("withdrawal_completed", "training", "held", -3_000, 0),
    ]
    assert_books_balance(admin)


def test_held_then_cancelled_goes_back_to_available(
        admin: Caller, bank: Caller, clock: Clock, database: Database) -> None:
    member_id = funded_member(admin, bank, clock, "healthcare", 10_000)
    hold = held(admin, member_id, "healthcare", 2_500, "medical_expense")

    undone = act(admin, hold["id"], "cancel")

    assert (undone["status"], undone["cancelled_at"], undone["completed_at"]) == (
        "cancelled", "2026-07-15T12:00:00Z", None)
    assert bucket(admin, member_id, "healthcare") == (10_000, 0, 0)
    assert cash_minor(database) == 10_000
    assert withdrawal_moves(admin, member_id) == [
        ("withdrawal_held", "healthcare", "available", -2_500, 7_500),
        ("withdrawal_held", "healthcare", "held", 2_500, 2_500),
        ("withdrawal_cancelled", "healthcare", "held", -2_500, 0),
        ("withdrawal_cancelled", "healthcare", "available", 2_500, 10_000),
    ]
    assert_books_balance(admin)


def test_complete_or_cancel_from_another_status_is_409_and_moves_nothing(
        admin: Caller, bank: Caller, clock: Clock, database: Database) -> None:
    member_id = funded_member(admin, bank, clock, "healthcare", 10_000)
    completed = held(admin, member_id, "healthcare", 1_000)
    act(admin, completed["id"], "complete")
    cancelled = held(admin, member_id, "healthcare", 2_000)
    act(admin, cancelled["id"], "cancel")
    before = (balances(admin, member_id), cash_minor(database), len(entries_of(admin, member_id)))

    for withdrawal in (completed, cancelled):
        for action in ("complete", "cancel"):
            again = act(admin, withdrawal["id"], action, status=409)
            assert again["type"] == "conflict"

    assert (balances(admin, member_id), cash_minor(database), len(entries_of(admin, member_id))) == before
    assert bucket(admin, member_id, "healthcare") == (9_000, 0, 0)
    assert [w["status"] for w in withdrawals_of(admin, member_id)] == ["cancelled", "completed"]
    assert_books_balance(admin)


def test_a_member_cancels_their_own_held_withdrawal_but_cannot_complete_it(
        app: Flask, admin: Caller, bank: Caller, clock: Clock) -> None:
    """API.md: complete is admin only (403 for a member key); cancel: the member too, while held."""
    member_id = funded_member(admin, bank, clock, "healthcare", 10_000)
    member = new_caller(app, admin, "member", member_id=member_id)
    own = member.post(f"/v1/members/{member_id}/withdrawals", withdrawal_body("healthcare", 4_000))
    assert own.status_code == 201, own.json

    complete = member.post(f"/v1/withdrawals/{own.json['id']}/complete")
    assert (complete.status_code, complete.json["type"]) == (403, "forbidden")
    assert bucket(admin, member_id, "healthcare") == (6_000, 4_000, 0)

    assert act(member, own.json["id"], "cancel")["status"] == "cancelled"
    assert act(member, own.json["id"], "cancel", status=409)["type"] == "conflict"
    assert bucket(admin, member_id, "healthcare") == (10_000, 0, 0)
    assert [w["status"] for w in get(member, f"/v1/members/{member_id}/withdrawals")["data"]] == ["cancelled"]
    assert get(member, f"/v1/withdrawals/{own.json['id']}")["status"] == "cancelled"


def test_a_member_can_neither_see_nor_cancel_nor_spend_another_member_s_money(
        app: Flask, admin: Caller, bank: Caller, clock: Clock) -> None:
    """Outside the caller's scope: 404, as if it did not exist."""
    owner = funded_member(admin, bank, clock, "healthcare", 10_000)
    other = funded_member(admin, bank, clock, "healthcare", 10_000)
    hold = held(admin, owner, "healthcare", 4_000)
    intruder = new_caller(app, admin, "member", member_id=other)

    responses = [
        intruder.get(f"/v1/withdrawals/{hold['id']}"),
        intruder.post(f"/v1/withdrawals/{hold['id']}/cancel"),
        intruder.get(f"/v1/members/{owner}/withdrawals"),
        intruder.post(f"/v1/members/{owner}/withdrawals", withdrawal_body("healthcare", 1_000)),
        intruder.get("/v1/withdrawals/wdr_doesnotexist"),
    ]

    assert [(r.status_code, r.json["type"]) for r in responses] == [(404, "not_found")] * 5
    assert get(admin, f"/v1/withdrawals/{hold['id']}")["status"] == "held"
    assert bucket(admin, owner, "healthcare") == (6_000, 4_000, 0)
    assert withdrawals_of(admin, other) == []


def test_a_platform_key_can_use_no_withdrawal_endpoint(
        app: Flask, admin: Caller, bank: Caller, clock: Clock) -> None:
    """API.md: withdrawals and limits are for admins and members: a platform key gets 403."""
    member_id = funded_member(admin, bank, clock, "healthcare", 10_000)
    hold = held(admin, member_id, "healthcare", 1_000)

    responses = [
        bank.post(f"/v1/members/{member_id}/withdrawals", withdrawal_body("healthcare", 1_000)),
        bank.get(f"/v1/members/{member_id}/withdrawals"),
        bank.get(f"/v1/withdrawals/{hold['id']}"),
        bank.post(f"/v1/withdrawals/{hold['id']}/complete"),
        bank.post(f"/v1/withdrawals/{hold['id']}/cancel"),
        bank.post("/v1/withdrawal-limits", {"bucket": "retirement", "purpose": "ira_transfer", "tax_year": 2026,
                                            "limit_minor": 1}),
        bank.get("/v1/withdrawal-limits"),
    ]

    assert [(r.status_code, r.json["type"]) for r in responses] == [(403, "forbidden")] * 7
    assert bucket(admin, member_id, "healthcare") == (9_000, 1_000, 0)
    assert [w["status"] for w in withdrawals_of(admin, member_id)] == ["held"]
    assert get(admin, "/v1/withdrawal-limits")["data"] == []


@pytest.mark.parametrize(("change", "field"), [
    ({"bucket": "retirement", "purpose": "premium"}, "purpose"),
    ({"bucket": "training", "purpose": "ira_transfer"}, "purpose"),
    ({"bucket": "healthcare", "purpose": "tuition"}, "purpose"),
    ({"purpose": "groceries"}, "purpose"),
    ({"bucket": "savings"}, "bucket"),
    ({"payee": "x" * 201}, "payee"),
    ({"payee": ""}, "payee"),
    ({"amount_minor": 0}, "amount_minor"),
    ({"amount_minor": -1}, "amount_minor"),
    ({"amount_minor": 3000.0}, "amount_minor"),
    ({"amount_minor": 30.5}, "amount_minor"),
    ({"amount_minor": "3000"}, "amount_minor"),
    ({"amount_minor": True}, "amount_minor"),
    ({"amount_minor": None}, "amount_minor"),
    ({"amount_minor": 10**12 + 1}, "amount_minor"),
    ({"currency": "usd"}, "currency"),
    ({"note": "rent"}, "note"),
])
def test_a_bad_withdrawal_request_is_422_on_its_field_and_moves_nothing(
        admin: Caller, bank: Caller, clock: Clock, change: dict[str, Any], field: str) -> None:
    member_id = funded_member(admin, bank, clock, "healthcare", 10_000)
    body = {**withdrawal_body("healthcare", 3_000, "premium"), **change}

    response = admin.post(f"/v1/members/{member_id}/withdrawals", body)

    assert (response.status_code, response.json["type"]) == (422, "validation_error"), response.json
    assert list(response.json["errors"]) == [field], response.json
    assert bucket(admin, member_id, "healthcare") == (10_000, 0, 0)
    assert withdrawals_of(admin, member_id) == []


def test_a_payee_of_exactly_200_characters_is_accepted(admin: Caller, bank: Caller, clock: Clock) -> None:
    member_id = funded_member(admin, bank, clock, "training", 10_000)

    response = withdraw(admin, member_id, "training", 3_000, payee="é" * 200)

    assert response.status_code == 201, response.json
    assert get(admin, f"/v1/withdrawals/{response.json['id']}")["payee"] == "é" * 200


def test_withdrawals_of_an_unknown_member_are_404(admin: Caller) -> None:
    response = withdraw(admin, "mem_doesnotexist", "healthcare", 100)

    assert (response.status_code, response.json["type"]) == (404, "not_found")


def test_withdrawals_list_newest_first_with_a_status_filter(admin: Caller, bank: Caller, clock: Clock) -> None:
    member_id = funded_member(admin, bank, clock, "healthcare", 10_000)
    first = held(admin, member_id, "healthcare", 100)
    second = held(admin, member_id, "healthcare", 200)
    third = held(admin, member_id, "healthcare", 300)
    act(admin, second["id"], "complete")

    everything = withdrawals_of(admin, member_id)
    still_held = get(admin, f"/v1/members/{member_id}/withdrawals?status=held")["data"]
    bad = admin.get(f"/v1/members/{member_id}/withdrawals?status=pending")

    assert [w["id"] for w in everything] == [third["id"], second["id"], first["id"]]
    assert [w["id"] for w in still_held] == [third["id"], first["id"]]
    assert (bad.status_code, bad.json["type"]) == (400, "validation_error")


# -- the limits API ---------------------------------------------------------------------------


def test_a_limit_is_created_with_its_shape_and_listed_by_tax_year(admin: Caller) -> None:
    ira = set_limit(admin, "retirement", "ira_transfer", 2026, IRA_2026, [(50, IRA_CATCH_UP_50)])
    family = set_limit(admin, "healthcare", "hsa_transfer", 2026, HSA_FAMILY_2026, [(55, HSA_CATCH_UP_55)],
                       coverage="family")
    self_only = set_limit(admin, "healthcare", "hsa_transfer", 2026, HSA_SELF_2026, [(55, HSA_CATCH_UP_55)],
                          coverage="self_only")
    next_year = set_limit(admin, "retirement", "ira_transfer", 2027, 800_000, [(60, 50_000), (50, 110_000)])

    assert ira == {"id": ira["id"], "bucket": "retirement", "purpose": "ira_transfer", "tax_year": 2026,
                   "currency": "USD", "limit_minor": 750_000, "coverage": None,
                   "catch_up": [{"min_age": 50, "extra_minor": 110_000}], "created_at": "2026-07-15T12:00:00Z"}
    assert (family["coverage"], family["limit_minor"], self_only["coverage"]) == ("family", 875_000, "self_only")
    assert next_year["catch_up"] == [{"min_age": 50, "extra_minor": 110_000}, {"min_age": 60, "extra_minor": 50_000}]
    listed_2026 = get(admin, "/v1/withdrawal-limits?tax_year=2026")
    assert [row["id"] for row in listed_2026["data"]] == [self_only["id"], family["id"], ira["id"]]
    assert (listed_2026["has_more"], listed_2026["next_cursor"]) == (False, None)
    assert [row["id"] for row in get(admin, "/v1/withdrawal-limits?tax_year=2027")["data"]] == [next_year["id"]]
    assert len(get(admin, "/v1/withdrawal-limits")["data"]) == 4
    assert get(admin, "/v1/withdrawal-limits?tax_year=2025")["data"] == []


@pytest.mark.parametrize("tax_year", ["abc", "26", "20266", "２０２６", "2026.0", "-2026", "1899"])
def test_a_tax_year_filter_that_is_not_a_year_is_400(admin: Caller, tax_year: str) -> None:
    """A bad query value: 400 validation_error on that field (API.md "Conventions")."""
    response = admin.get(f"/v1/withdrawal-limits?tax_year={quote(tax_year)}")

    assert (response.status_code, response.json["type"]) == (400, "validation_error"), response.json
    assert list(response.json["errors"]) == ["tax_year"]


def test_an_hsa_member_without_a_coverage_gets_the_lowest_coverage_limit(
        admin: Caller, bank: Caller, clock: Clock, limits_2026: None) -> None:
    """The service's stated rule (the safe side): coverage unknown, only coverage limits set:
    the lowest of them applies (self-only $4,400.00)."""
    member_id = funded_member(admin, bank, clock, "healthcare", 0, birth_year=1990)

    refused_for_limit(withdraw(admin, member_id, "healthcare", 500_000, "hsa_transfer"), HSA_SELF_2026)


def test_a_family_member_when_only_a_self_only_hsa_limit_is_set_gets_that_limit_not_none(
        admin: Caller, bank: Caller, clock: Clock) -> None:
    """The same safe side: the fund set no family limit, so the only coverage limit (self-only
    $4,400.00) applies; without it a family member would have no limit at all."""
    set_limit(admin, "healthcare", "hsa_transfer", 2026, HSA_SELF_2026, coverage="self_only")
    member_id = funded_member(admin, bank, clock, "healthcare", 500_000, birth_year=1990, hsa_coverage="family")

    refused_for_limit(withdraw(admin, member_id, "healthcare", HSA_SELF_2026 + 1, "hsa_transfer"), HSA_SELF_2026)


def test_a_second_limit_for_the_same_bucket_purpose_year_and_coverage_is_409(admin: Caller) -> None:
    set_limit(admin, "retirement", "ira_transfer", 2026, IRA_2026)
    set_limit(admin, "healthcare", "hsa_transfer", 2026, HSA_FAMILY_2026, coverage="family")

    again = set_limit(admin, "retirement", "ira_transfer", 2026, 700_000, status=409)
    family_again = set_limit(admin, "healthcare", "hsa_transfer", 2026, 1, coverage="family", status=409)
    other_coverage = set_limit(admin, "healthcare", "hsa_transfer", 2026, HSA_SELF_2026, coverage="self_only")
    other_year = set_limit(admin, "retirement", "ira_transfer", 2027, IRA_2026)

    assert (again["type"], family_again["type"]) == ("conflict", "conflict")
    assert (other_coverage["coverage"], other_year["tax_year"]) == ("self_only", 2027)
    assert len(get(admin, "/v1/withdrawal-limits")["data"]) == 4


def test_the_same_limit_posted_eight_times_at_once_is_recorded_once(admin: Caller, live_server: str) -> None:
    """The unique bucket/purpose/year/coverage: a concurrent twin gets 409, never a 500."""
    body = {"bucket": "healthcare", "purpose": "hsa_transfer", "tax_year": 2026, "limit_minor": HSA_FAMILY_2026,
            "coverage": "family", "catch_up": [{"min_age": 55, "extra_minor": HSA_CATCH_UP_55}]}

    def one() -> requests.Response:
        with requests.Session() as session:
            return post_json(session, f"{live_server}/v1/withdrawal-limits", admin.key, body)

    responses = all_at_once([one] * 8)

    assert Counter(r.status_code for r in responses) == {201: 1, 409: 7}, [r.json() for r in responses]
    assert len(get(admin, "/v1/withdrawal-limits?tax_year=2026")["data"]) == 1


@pytest.mark.parametrize(("body", "field"), [
    ({"bucket": "retirement", "purpose": "ira_transfer", "coverage": "family"}, "coverage"),
    ({"bucket": "healthcare", "purpose": "premium", "coverage": "self_only"}, "coverage"),
    ({"bucket": "healthcare", "purpose": "hsa_transfer", "coverage": "couple"}, "coverage"),
    ({"bucket": "retirement", "purpose": "tuition"}, "purpose"),
    ({"bucket": "retirement", "purpose": "ira_transfer", "limit_minor": 7500.0}, "limit_minor"),
    ({"bucket": "retirement", "purpose": "ira_transfer", "tax_year": "2026"}, "tax_year"),
    ({"bucket": "retirement", "purpose": "ira_transfer",
      "catch_up": [{"min_age": 50, "extra_minor": 1}, {"min_age": 50, "extra_minor": 2}]}, "catch_up"),
    ({"bucket": "retirement", "purpose": "ira_transfer", "catch_up": [{"min_age": 50}]}, "catch_up"),
])
def test_a_bad_limit_is_422_and_nothing_is_recorded(admin: Caller, body: dict[str, Any], field: str) -> None:
    response = admin.post("/v1/withdrawal-limits", {"tax_year": 2026, "limit_minor": IRA_2026, **body})

    assert (response.status_code, response.json["type"]) == (422, "validation_error"), response.json
    assert list(response.json["errors"]) == [field], response.json
    assert get(admin, "/v1/withdrawal-limits")["data"] == []


def test_limits_are_for_administrators_only(app: Flask, admin: Caller) -> None:
    member = new_caller(app, admin, "member", member_id=new_member(admin))

    create = member.post("/v1/withdrawal-limits", {"bucket": "retirement", "purpose": "ira_transfer",
                                                   "tax_year": 2026, "limit_minor": 1})
    listing = member.get("/v1/withdrawal-limits")

    assert [(r.status_code, r.json["type"]) for r in (create, listing)] == [(403, "forbidden")] * 2


def test_money_deposited_later_in_the_year_still_counts_against_the_same_year(
        admin: Caller, bank: Caller, clock: Clock, limits_2026: None) -> None:
    """The limit is on what is moved in the year, whatever the balance: two withdrawals
    months apart share one 2026 limit; completed ones still count."""
    clock.now = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)
    member_id = funded_member(admin, bank, clock, "retirement", 500_000, birth_year=1986)
    spring = held(admin, member_id, "retirement", 500_000)
    act(admin, spring["id"], "complete")
    clock.now = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)
    deposit(admin, bank, clock, worker_ref_of(member_id), "retirement", 500_000)

    refused_for_limit(withdraw(admin, member_id, "retirement", 250_001), 250_000)
    held(admin, member_id, "retirement", 250_000)
    assert bucket(admin, member_id, "retirement") == (250_000, 250_000, 0)
