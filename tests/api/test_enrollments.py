"""Enrollments and link codes (API.md "Resources": ``POST /v1/enrollments``, link codes).

A platform enrolls its ``worker_ref``: without a code a new member account opens; with a
member's link code (valid 7 days, single use) the worker joins that member's account. The
same ``worker_ref`` again with the same outcome: 200; already linked to another member:
409. An administrator names the member directly.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
import requests
from flask import Flask

from tests.api.conftest import assert_error
from tests.conftest import Caller, Clock, new_caller
from tests.factories import make_platform, report

NOW = "2026-07-15T12:00:00Z"


@pytest.fixture
def dash(app: Flask, admin: Caller) -> Caller:
    return make_platform(app, admin, "dash")


@pytest.fixture
def ride(app: Flask, admin: Caller) -> Caller:
    return make_platform(app, admin, "ride", rate_bps=300)


def link_code(app: Flask, admin: Caller, member_id: str) -> dict[str, Any]:
    member = new_caller(app, admin, "member", member_id=member_id)
    response = member.post(f"/v1/members/{member_id}/link-codes")
    assert response.status_code == 201, response.json
    return dict(response.json)


def members_count(admin: Caller) -> int:
    """Members reachable through enrollments (there is no member list)."""
    return len({e["member_id"] for e in admin.get("/v1/enrollments?limit=500").json["data"]})


def test_a_worker_enrolled_without_a_code_opens_a_new_member_account(dash: Caller, admin: Caller) -> None:
    response = dash.post("/v1/enrollments", {"worker_ref": "w-1"})
    assert response.status_code == 201
    member_id = response.json["member_id"]
    assert response.json == {"contributor_id": "dash", "worker_ref": "w-1", "member_id": member_id,
                             "created_at": NOW}
    assert member_id.startswith("mem_")
    member = admin.get(f"/v1/members/{member_id}").json
    assert (member["id"], member["allocation"], member["created_at"]) == (member_id, None, NOW)


def test_the_same_worker_ref_again_answers_200_with_the_same_member(dash: Caller, admin: Caller) -> None:
    first = dash.post("/v1/enrollments", {"worker_ref": "w-1"})
    again = dash.post("/v1/enrollments", {"worker_ref": "w-1"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json == first.json
    assert members_count(admin) == 1
    assert len(dash.get("/v1/enrollments").json["data"]) == 1


def test_worker_refs_are_compared_exactly(dash: Caller) -> None:
    first = dash.post("/v1/enrollments", {"worker_ref": "w-1"}).json
    other = dash.post("/v1/enrollments", {"worker_ref": "W-1"})
    assert other.status_code == 201
    assert other.json["member_id"] != first["member_id"]


def test_a_member_issues_a_link_code_valid_seven_days(app: Flask, dash: Caller, admin: Caller) -> None:
    member_id = dash.post("/v1/enrollments", {"worker_ref": "w-1"}).json["member_id"]
    code = link_code(app, admin, member_id)
    assert code["code"].startswith("lnk_")
    assert code["expires_at"] == "2026-07-22T12:00:00Z"


def test_a_link_code_links_another_platforms_worker_to_the_same_member(
        app: Flask, dash: Caller, ride: Caller, admin: Caller) -> None:
    member_id = dash.post("/v1/enrollments", {"worker_ref": "w-1"}).json["member_id"]
    code = link_code(app, admin, member_id)["code"]
    linked = ride.post("/v1/enrollments", {"worker_ref": "w-9", "link_code": code})
    assert linked.status_code == 201
    assert linked.json == {"contributor_id": "ride", "worker_ref": "w-9", "member_id": member_id, "created_at": NOW}
    again = ride.post("/v1/enrollments", {"worker_ref": "w-9", "link_code": code})
    assert (again.status_code, again.json) == (200, linked.json)
    assert members_count(admin) == 1


def test_contributions_from_two_platforms_land_in_one_account(
        app: Flask, dash: Caller, ride: Caller, admin: Caller) -> None:
    member_id = dash.post("/v1/enrollments", {"worker_ref": "w-1"}).json["member_id"]
    ride.post("/v1/enrollments", {"worker_ref": "w-9", "link_code": link_code(app, admin, member_id)["code"]})
    assert dash.post("/v1/contributions", report("d-1", "w-1", "dash-plan", 100000)).json["amount_minor"] == 4000
    assert ride.post("/v1/contributions", report("r-1", "w-9", "ride-plan", 51237)).json["amount_minor"] == 1537
    buckets = admin.get(f"/v1/members/{member_id}/balances").json["buckets"]
    assert {b: v["pending_minor"] for b, v in buckets.items()} == {
        "healthcare": 2769, "retirement": 1661, "training": 1107}


def test_a_used_code_cannot_link_another_worker(app: Flask, dash: Caller, ride: Caller, admin: Caller) -> None:
    member_id = dash.post("/v1/enrollments", {"worker_ref": "w-1"}).json["member_id"]
    code = link_code(app, admin, member_id)["code"]
    assert ride.post("/v1/enrollments", {"worker_ref": "w-9", "link_code": code}).status_code == 201
    before = admin.get("/v1/enrollments").json
    for caller, worker in ((ride, "w-10"), (dash, "w-2")):
        response = caller.post("/v1/enrollments", {"worker_ref": worker, "link_code": code})
        assert_error(response, 422, "validation_error", {"link_code"})
    assert admin.get("/v1/enrollments").json == before


def test_an_expired_code_is_refused(app: Flask, dash: Caller, ride: Caller, admin: Caller, clock: Clock) -> None:
    member_id = dash.post("/v1/enrollments", {"worker_ref": "w-1"}).json["member_id"]
    code = link_code(app, admin, member_id)["code"]
    clock.now += timedelta(days=8)
    before = admin.get("/v1/enrollments").json
    response = ride.post("/v1/enrollments", {"worker_ref": "w-9", "link_code": code})
    assert_error(response, 422, "validation_error", {"link_code"})
    assert admin.get("/v1/enrollments").json == before


def test_a_code_is_still_valid_just_before_seven_days(
        app: Flask, dash: Caller, ride: Caller, admin: Caller, clock: Clock) -> None:
    member_id = dash.post("/v1/enrollments", {"worker_ref": "w-1"}).json["member_id"]
    code = link_code(app, admin, member_id)["code"]
    clock.now += timedelta(days=7) - timedelta(seconds=1)
    response = ride.post("/v1/enrollments", {"worker_ref": "w-9", "link_code": code})
    assert (response.status_code, response.json["member_id"]) == (201, member_id)


def test_an_unknown_code_is_a_422_on_link_code(ride: Caller, admin: Caller) -> None:
    response = ride.post("/v1/enrollments", {"worker_ref": "w-9", "link_code": "lnk_00000000000000000000"})
    assert_error(response, 422, "validation_error", {"link_code"})
    assert admin.get("/v1/enrollments").json["data"] == []


def test_a_worker_ref_linked_to_another_member_is_a_conflict_and_the_code_stays_unused(
        app: Flask, dash: Caller, admin: Caller) -> None:
    first = dash.post("/v1/enrollments", {"worker_ref": "w-1"}).json["member_id"]
    other = dash.post("/v1/enrollments", {"worker_ref": "w-2"}).json["member_id"]
    code = link_code(app, admin, other)["code"]
    before = admin.get("/v1/enrollments").json
    response = dash.post("/v1/enrollments", {"worker_ref": "w-1", "link_code": code})
    assert_error(response, 409, "conflict", {"worker_ref"})
    assert admin.get("/v1/enrollments").json == before
    assert dash.get("/v1/enrollments?worker_ref=w-1").json["data"][0]["member_id"] == first
    reused = dash.post("/v1/enrollments", {"worker_ref": "w-3", "link_code": code})
    assert (reused.status_code, reused.json["member_id"]) == (201, other)


def test_a_code_for_the_member_a_worker_already_has_answers_200(app: Flask, dash: Caller, admin: Caller) -> None:
    first = dash.post("/v1/enrollments", {"worker_ref": "w-1"}).json
    code = link_code(app, admin, first["member_id"])["code"]
    again = dash.post("/v1/enrollments", {"worker_ref": "w-1", "link_code": code})
    assert (again.status_code, again.json) == (200, first)


@pytest.mark.parametrize(("body", "field"), [
    ({"worker_ref": "w-1", "contributor_id": "dash"}, "contributor_id"),
    ({"worker_ref": "w-1", "member_id": "mem_00000000000000000000"}, "member_id"),
    ({}, "worker_ref"),
    ({"worker_ref": "w 1"}, "worker_ref"),
    ({"worker_ref": "w-1", "extra": 1}, "extra"),
])
def test_a_platform_body_with_a_wrong_field_is_a_422_on_that_field(
        dash: Caller, admin: Caller, body: dict[str, Any], field: str) -> None:
    assert_error(dash.post("/v1/enrollments", body), 422, "validation_error", {field})
    assert admin.get("/v1/enrollments").json["data"] == []


# -- the administrator's form -------------------------------------------------------------------


def test_an_admin_enrolls_a_worker_into_a_named_member(dash: Caller, admin: Caller) -> None:
    member_id = admin.post("/v1/members", {"display_name": "Ana"}).json["id"]
    body = {"contributor_id": "dash", "worker_ref": "w-7", "member_id": member_id}
    first = admin.post("/v1/enrollments", body)
    assert (first.status_code, first.json) == (201, {**body, "created_at": NOW})
    again = admin.post("/v1/enrollments", body)
    assert (again.status_code, again.json) == (200, first.json)
    assert dash.get("/v1/enrollments").json["data"] == [first.json]


def test_an_admin_cannot_move_a_linked_worker_to_another_member(dash: Caller, admin: Caller) -> None:
    dash.post("/v1/enrollments", {"worker_ref": "w-1"})
    other = admin.post("/v1/members", {}).json["id"]
    response = admin.post("/v1/enrollments", {"contributor_id": "dash", "worker_ref": "w-1", "member_id": other})
    assert_error(response, 409, "conflict", {"worker_ref"})


@pytest.mark.parametrize(("body", "field"), [
    ({"contributor_id": "dash", "worker_ref": "w-7"}, "member_id"),
    ({"worker_ref": "w-7", "member_id": "{member}"}, "contributor_id"),
    ({"contributor_id": "dash", "worker_ref": "w-7", "member_id": "mem_00000000000000000000"}, "member_id"),
    ({"contributor_id": "nobody", "worker_ref": "w-7", "member_id": "{member}"}, "contributor_id"),
    ({"contributor_id": "dash", "worker_ref": "w-7", "member_id": "{member}", "link_code": "lnk_x"}, "link_code"),
])
def test_an_admin_body_with_a_wrong_field_is_a_422_on_that_field(
        dash: Caller, admin: Caller, body: dict[str, Any], field: str) -> None:
    member_id = admin.post("/v1/members", {}).json["id"]
    filled = {k: v.format(member=member_id) for k, v in body.items()}
    assert_error(admin.post("/v1/enrollments", filled), 422, "validation_error", {field})
    assert admin.get("/v1/enrollments").json["data"] == []


def test_the_enrollment_list_filters_by_worker_ref(dash: Caller, admin: Caller) -> None:
    for ref in ("w-1", "w-2", "w-3"):
        dash.post("/v1/enrollments", {"worker_ref": ref})
    assert [e["worker_ref"] for e in dash.get("/v1/enrollments").json["data"]] == ["w-3", "w-2", "w-1"]
    assert [e["worker_ref"] for e in dash.get("/v1/enrollments?worker_ref=w-2").json["data"]] == ["w-2"]
    assert_error(dash.get("/v1/enrollments?worker_ref=w%202"), 400, "validation_error", {"worker_ref"})


# -- concurrency over a real server ----------------------------------------------------------


def _post_concurrently(live_server: str, caller: Caller, bodies: list[dict[str, Any]]) -> list[requests.Response]:
    def one(body: dict[str, Any]) -> requests.Response:
        return requests.post(f"{live_server}/v1/enrollments", json=body, timeout=60,
                             headers={"Authorization": f"Bearer {caller.key}"})

    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        return list(pool.map(one, bodies))


def test_twenty_concurrent_enrollments_of_one_worker_open_one_account(
        live_server: str, dash: Caller, admin: Caller) -> None:
    answers = _post_concurrently(live_server, dash, [{"worker_ref": "w-1"}] * 20)
    assert sorted(a.status_code for a in answers) == [200] * 19 + [201], [(a.status_code, a.text) for a in answers]
    assert len({a.json()["member_id"] for a in answers}) == 1
    assert len(dash.get("/v1/enrollments").json["data"]) == 1
    assert admin.post("/v1/ledger/verify").json["ok"] is True


def test_one_link_code_used_by_ten_workers_at_once_links_exactly_one(
        live_server: str, app: Flask, dash: Caller, ride: Caller, admin: Caller) -> None:
    member_id = dash.post("/v1/enrollments", {"worker_ref": "w-1"}).json["member_id"]
    code = link_code(app, admin, member_id)["code"]
    answers = _post_concurrently(live_server, ride, [{"worker_ref": f"w-{n}", "link_code": code} for n in range(10)])
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [201] + [422] * 9, [(a.status_code, a.text) for a in answers]
    assert all(set(a.json()["errors"]) == {"link_code"} for a in answers if a.status_code == 422)
    linked = ride.get("/v1/enrollments").json["data"]
    assert [e["member_id"] for e in linked] == [member_id]
