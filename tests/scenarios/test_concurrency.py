"""DESIGN.md "Concurrency and durability" over a real HTTP server (waitress, 16 threads).

Many requests at once, from many threads, against one member, one period or one
remittance: the (member, plan) anchor lock, the remittance row lock, the sorted account
locks and the unique constraints must make the outcome exactly what one-at-a-time posting
would give. Runs on SQLite (BEGIN IMMEDIATE) and PostgreSQL (SELECT ... FOR UPDATE).
"""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from flask import Flask

from ledger.db import Database
from tests.conftest import Caller
from tests.scenarios.helpers import assert_books_balance, enroll, get, line, platform, suspense_minor, totals

TIMEOUT_S = 120


class Http:
    """A key's requests against the live server; safe to share across threads (a session per thread)."""

    def __init__(self, base_url: str, key: str) -> None:
        self.base_url, self.key = base_url, key
        self.local = threading.local()
        self.sessions: list[requests.Session] = []

    def post(self, path: str, body: dict[str, Any]) -> requests.Response:
        session = getattr(self.local, "session", None)
        if session is None:
            session = self.local.session = requests.Session()
            self.sessions.append(session)
        return session.post(self.base_url + path, json=body, timeout=TIMEOUT_S,
                            headers={"Authorization": f"Bearer {self.key}"})

    def close(self) -> None:
        """Close every thread's connection."""
        for session in self.sessions:
            session.close()


def all_at_once(calls: list[Any], workers: int | None = None) -> list[requests.Response]:
    """Run the zero-argument ``calls`` together (released by one barrier); their responses in order."""
    workers = workers or len(calls)
    barrier = threading.Barrier(min(workers, len(calls)))

    def run(call: Any) -> requests.Response:
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait(timeout=30)
        response: requests.Response = call()
        return response

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(run, calls))


@pytest.fixture
def client_for(live_server: str) -> Iterator[Callable[[Caller], Http]]:
    """``client_for(caller)``: that key's requests against the live server, closed at the end."""
    made: list[Http] = []

    def make(caller: Caller) -> Http:
        made.append(Http(live_server, caller.key))
        return made[-1]

    yield make
    for http in made:
        http.close()


def listed(admin: Caller, path: str) -> list[dict[str, Any]]:
    """Every row of a list (one page of up to 500)."""
    body = get(admin, f"{path}{'&' if '?' in path else '?'}limit=500")
    assert body["has_more"] is False
    rows: list[dict[str, Any]] = body["data"]
    return rows


@pytest.fixture
def dash(app: Flask, admin: Caller) -> Caller:
    """A platform with a monthly 4% plan (no threshold) and a quarterly 4% plan ($750 threshold)."""
    return platform(app, admin, "dash", **{"dash-m": {},
                                           "dash-q": {"period": "quarter", "min_earnings_minor": 75_000}})


def test_fifty_reports_of_one_month_sent_at_once_post_exactly_50_times_4000(
        client_for: Callable[[Caller], Http], admin: Caller, dash: Caller) -> None:
    member_id = enroll(dash, "w-1")
    http = client_for(dash)
    calls = [lambda i=i: http.post("/v1/contributions", line(f"r-{i}", "w-1", "dash-m", 100_000))
             for i in range(50)]

    responses = all_at_once(calls)

    assert Counter(r.status_code for r in responses) == {201: 50}, [r.json() for r in responses if r.status_code != 201]
    assert sorted(r.json()["amount_minor"] for r in responses) == [4_000] * 50
    assert totals(admin, member_id) == {"pending_minor": 200_000, "available_minor": 0, "held_minor": 0}
    (monthly,) = {r.json()["remittance_id"] for r in responses}
    rem = get(admin, f"/v1/remittances/{monthly}")
    assert (rem["amount_due_minor"], rem["line_count"]) == (200_000, 50)
    assert len(listed(admin, f"/v1/contributions?remittance_id={monthly}")) == 50
    assert_books_balance(admin)


def test_fifty_small_reports_at_once_round_once_on_the_month_s_aggregate(
        client_for: Callable[[Caller], Http], admin: Caller, dash: Caller) -> None:
    member_id = enroll(dash, "w-1")
    http = client_for(dash)
    calls = [lambda i=i: http.post("/v1/contributions", line(f"r-{i}", "w-1", "dash-m", 333)) for i in range(50)]

    responses = all_at_once(calls)

    assert Counter(r.status_code for r in responses) == {201: 50}
    assert sum(r.json()["amount_minor"] for r in responses) == 666  # 4% of 50 x $3.33 = 666.00, rounded once
    assert sum(totals(admin, member_id).values()) == 666
    assert_books_balance(admin)


def test_fifty_reports_in_seven_months_at_once_post_4000_each(
        client_for: Callable[[Caller], Http], admin: Caller, dash: Caller) -> None:
    member_id = enroll(dash, "w-1")
    http = client_for(dash)
    months = ["2026-01-31", "2026-02-28", "2026-03-31", "2026-04-30", "2026-05-31", "2026-06-30", "2026-07-15"]
    calls = [lambda i=i: http.post("/v1/contributions", line(
        f"r-{i}", "w-1", "dash-m", 100_000, months[i % 7][:8] + "01", months[i % 7])) for i in range(50)]

    responses = all_at_once(calls)

    assert Counter(r.status_code for r in responses) == {201: 50}
    assert sum(r.json()["amount_minor"] for r in responses) == 200_000
    assert totals(admin, member_id)["pending_minor"] == 200_000
    assert_books_balance(admin)


def test_the_same_remittance_posted_twice_at_once_is_recorded_once(
        client_for: Callable[[Caller], Http], admin: Caller, dash: Caller) -> None:
    http = client_for(dash)
    for attempt in range(5):
        enroll(dash, f"a-{attempt}")
        enroll(dash, f"b-{attempt}")
        body = {"external_id": f"batch-{attempt}", "currency": "USD", "lines": [
            line(f"a-{attempt}", f"a-{attempt}", "dash-m", 100_000),
            line(f"b-{attempt}", f"b-{attempt}", "dash-m", 51_237)]}

        responses = all_at_once([lambda body=body: http.post("/v1/remittances", body)] * 2)

        assert sorted(r.status_code for r in responses) == [200, 201], [r.json() for r in responses]
        assert responses[0].json()["id"] == responses[1].json()["id"]
        assert [r.json()["amount_due_minor"] for r in responses] == [6_049] * 2  # 4,000 + 4% of $512.37
    remittances = listed(admin, "/v1/remittances")
    assert sorted(r["external_id"] for r in remittances) == [f"batch-{i}" for i in range(5)]
    assert sum(r["amount_due_minor"] for r in remittances) == 5 * 6_049
    assert len(listed(admin, "/v1/contributions")) == 10
    assert_books_balance(admin)


def test_two_reports_of_one_quarter_sent_at_once_post_4400_in_total(
        client_for: Callable[[Caller], Http], admin: Caller, dash: Caller) -> None:
    members = {f"w-{i}": enroll(dash, f"w-{i}") for i in range(10)}
    http = client_for(dash)
    calls = []
    for ref in members:
        calls.append(lambda ref=ref: http.post("/v1/contributions", line(f"{ref}-600", ref, "dash-q", 60_000)))
        calls.append(lambda ref=ref: http.post("/v1/contributions", line(f"{ref}-500", ref, "dash-q", 50_000)))

    responses = all_at_once(calls)

    assert Counter(r.status_code for r in responses) == {201: 20}
    for index, (ref, member_id) in enumerate(members.items()):
        pair = sorted(r.json()["amount_minor"] for r in responses[2 * index: 2 * index + 2])
        assert pair == [0, 4_400], ref
        assert totals(admin, member_id)["pending_minor"] == 4_400
    assert_books_balance(admin)


def test_eight_writers_of_25_reports_each_all_get_201_never_503_or_database_is_locked(
        client_for: Callable[[Caller], Http], admin: Caller, dash: Caller) -> None:
    for writer in range(8):
        enroll(dash, f"w-{writer}")
    http = client_for(dash)

    def writer(index: int) -> list[requests.Response]:
        return [http.post("/v1/contributions", line(f"w{index}-{n}", f"w-{index}", "dash-m", 10_000 + n))
                for n in range(25)]

    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = [r for batch in pool.map(writer, range(8)) for r in batch]

    failures = [(r.status_code, r.text) for r in responses if r.status_code != 201]
    assert failures == []
    assert not any("locked" in r.text for r in responses)
    assert len(listed(admin, "/v1/contributions")) == 200
    # each worker: 4% of sum(10,000 + n for n < 25) = 4% of 250,300 = 10,012, whatever the order
    assert sum(r.json()["amount_minor"] for r in responses) == 8 * 10_012
    assert_books_balance(admin)


def test_reports_joining_the_monthly_remittance_while_fundings_arrive_end_all_available_with_nothing_left(
        client_for: Callable[[Caller], Http], admin: Caller, dash: Caller, database: Database) -> None:
    members = [enroll(dash, f"w-{i}") for i in range(20)]
    first = dash.post("/v1/contributions", line("seed", "w-0", "dash-q", 2_500, "2026-04-01", "2026-04-01"))
    assert first.status_code == 201, first.json
    monthly = first.json["remittance_id"]  # the seed posts 0 (below the quarterly threshold)
    platform_http, admin_http = client_for(dash), client_for(admin)
    reports = [lambda i=i: platform_http.post("/v1/contributions", line(f"r-{i}", f"w-{i}", "dash-m", 2_500))
               for i in range(20)]  # 4% of $25.00 = 100 each
    fundings = [lambda i=i: admin_http.post(f"/v1/remittances/{monthly}/fundings", {
        "amount_minor": 100, "currency": "USD", "reference": f"wire-{i}", "received_at": "2026-07-15T09:00:00Z"})
        for i in range(20)]

    responses = all_at_once([call for pair in zip(reports, fundings, strict=True) for call in pair])

    assert Counter(r.status_code for r in responses) == {201: 40}, [r.text for r in responses if r.status_code != 201]
    rem = get(admin, f"/v1/remittances/{monthly}")
    assert (rem["amount_due_minor"], rem["amount_funded_minor"], rem["line_count"]) == (2_000, 2_000, 21)
    assert suspense_minor(database, monthly) == 0
    assert Counter(c["status"] for c in listed(admin, f"/v1/contributions?remittance_id={monthly}")) == {
        "available": 21}
    assert [totals(admin, m)["available_minor"] for m in members] == [100] * 20
    assert sum(f["applied_minor"] for f in listed(admin, f"/v1/remittances/{monthly}/fundings")) == 2_000
    assert_books_balance(admin)


def test_twenty_fundings_of_one_batch_at_once_fund_it_exactly(
        client_for: Callable[[Caller], Http], admin: Caller, dash: Caller, database: Database) -> None:
    for i in range(20):
        enroll(dash, f"w-{i}")
    batch = dash.post("/v1/remittances", {"external_id": "R", "currency": "USD", "lines": [
        line(f"r-{i}", f"w-{i}", "dash-m", 2_500) for i in range(20)]})
    assert batch.status_code == 201, batch.json
    admin_http = client_for(admin)
    calls = [lambda i=i: admin_http.post(f"/v1/remittances/{batch.json['id']}/fundings", {
        "amount_minor": 110, "currency": "USD", "reference": f"wire-{i}", "received_at": "2026-07-15T09:00:00Z"})
        for i in range(20)]

    responses = all_at_once(calls)

    assert Counter(r.status_code for r in responses) == {201: 20}
    rem = get(admin, f"/v1/remittances/{batch.json['id']}")
    assert (rem["status"], rem["amount_funded_minor"], rem["credit_minor"]) == ("overfunded", 2_200, 200)
    assert suspense_minor(database, batch.json["id"]) == 200
    assert sum(r.json()["applied_minor"] for r in responses) <= 2_200
    assert sum(f["applied_minor"] for f in listed(admin, f"/v1/remittances/{batch.json['id']}/fundings")) == 2_000
    assert_books_balance(admin)


def test_the_same_reversal_sent_twice_at_once_reverses_once_and_answers_409_to_the_other(
        client_for: Callable[[Caller], Http], admin: Caller, dash: Caller) -> None:
    member_id = enroll(dash, "w-1")
    first = dash.post("/v1/contributions", line("q-800", "w-1", "dash-q", 80_000)).json  # 3,200
    second = dash.post("/v1/contributions", line("q-500", "w-1", "dash-q", 50_000)).json  # +2,000
    http = client_for(dash)
    reason = {"reason": "sent in error"}

    responses = all_at_once([lambda: http.post(f"/v1/contributions/{second['id']}/reversal", reason)] * 2)

    assert sorted(r.status_code for r in responses) == [201, 409], [r.text for r in responses]
    (done,) = [r.json() for r in responses if r.status_code == 201]
    assert done["replacement"]["amount_minor"] == 3_200
    assert totals(admin, member_id)["pending_minor"] == 3_200
    assert get(admin, f"/v1/remittances/{first['remittance_id']}")["amount_due_minor"] == 3_200
    assert_books_balance(admin)


def test_both_reports_of_a_period_reversed_at_once_leave_it_owing_nothing(
        client_for: Callable[[Caller], Http], admin: Caller, dash: Caller) -> None:
    member_id = enroll(dash, "w-1")
    first = dash.post("/v1/contributions", line("q-800", "w-1", "dash-q", 80_000)).json
    second = dash.post("/v1/contributions", line("q-500", "w-1", "dash-q", 50_000)).json
    http = client_for(dash)
    reason = {"reason": "sent in error"}

    responses = all_at_once([lambda c=c: http.post(f"/v1/contributions/{c['id']}/reversal", reason)
                             for c in (first, second)])

    assert [r.status_code for r in responses] == [201, 201], [r.text for r in responses]
    assert [get(admin, f"/v1/contributions/{c['id']}")["reversed_at"] is not None for c in (first, second)] == [
        True, True]
    assert totals(admin, member_id) == {"pending_minor": 0, "available_minor": 0, "held_minor": 0}
    assert get(admin, f"/v1/remittances/{first['remittance_id']}")["amount_due_minor"] == 0
    live = [c for c in listed(admin, f"/v1/contributions?remittance_id={first['remittance_id']}")
            if c["status"] != "void"]
    assert live == []
    assert_books_balance(admin)
