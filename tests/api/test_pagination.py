"""Lists (API.md "Conventions"): ``?limit=`` 1-500 (default 50), opaque ``?cursor=``, newest
first, ``{data, has_more, next_cursor}``; keyset pagination, so rows that existed when the
first page was read appear exactly once whatever is inserted meanwhile. A bad ``limit`` or
``cursor`` is 400 ``validation_error`` on that query value.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask

from tests.api.conftest import PLAN_ID, assert_error
from tests.conftest import Caller
from tests.factories import enroll, make_platform, report


@pytest.fixture
def platform(app: Flask, admin: Caller) -> Caller:
    platform = make_platform(app, admin)
    enroll(platform, "w-1")
    return platform


def post_reports(platform: Caller, start: int, count: int) -> list[str]:
    ids = []
    for n in range(start, start + count):
        response = platform.post("/v1/contributions", report(f"r-{n}", "w-1", PLAN_ID, 1000 * n))
        assert response.status_code == 201, response.json
        ids.append(response.json["id"])
    return ids


def read_all(caller: Caller, path: str, limit: int, between: Callable[[int], Any] | None = None) -> list[Any]:
    """Every page of ``path``; ``between(page_number)`` runs after each page."""
    seen: list[Any] = []
    url = f"{path}?limit={limit}"
    for number in range(1000):
        response = caller.get(url)
        assert response.status_code == 200, response.json
        body = response.json
        assert set(body) == {"data", "has_more", "next_cursor"}
        assert len(body["data"]) <= limit
        seen.extend(body["data"])
        if between is not None:
            between(number)
        if not body["has_more"]:
            assert body["next_cursor"] is None
            return seen
        assert isinstance(body["next_cursor"], str) and body["next_cursor"]
        url = f"{path}?limit={limit}&cursor={body['next_cursor']}"
    raise AssertionError("never ended")


@pytest.mark.parametrize("limit", ["0", "501", "abc", "-1", "", "1.5", "+5", " 5", "5 ", "1e2", "\uff15",
                                   "99999999999999999999"])
def test_a_limit_outside_1_to_500_or_not_written_in_digits_is_a_400(platform: Caller, limit: str) -> None:
    assert_error(platform.get("/v1/contributions", query_string={"limit": limit}), 400, "validation_error",
                 {"limit"})


@pytest.mark.parametrize("path", ["/v1/contributions", "/v1/enrollments", "/v1/remittances", "/v1/contributors",
                                  "/v1/contributors/dash/plans"])
def test_every_list_checks_its_limit(platform: Caller, path: str) -> None:
    assert_error(platform.get(f"{path}?limit=0"), 400, "validation_error", {"limit"})
    assert platform.get(f"{path}?limit=1").status_code == 200
    assert platform.get(f"{path}?limit=500").status_code == 200


@pytest.mark.parametrize("path", ["/v1/api-keys", "/v1/fundings", "/v1/members/{m}/entries",
                                  "/v1/members/{m}/contributions"])
def test_every_admin_list_checks_its_limit_and_cursor(app: Flask, admin: Caller, path: str) -> None:
    platform = make_platform(app, admin)
    url = path.format(m=enroll(platform, "w-1"))
    assert_error(admin.get(f"{url}?limit=501"), 400, "validation_error", {"limit"})
    assert_error(admin.get(f"{url}?cursor=nope"), 400, "validation_error", {"cursor"})
    assert admin.get(f"{url}?limit=500").status_code == 200


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize("cursor", ["abc", "\x00", _b64("s-1"), _b64("x5"), _b64("s"), _b64("s1" + "0" * 30),
                                    "!!!!", "c" * 101, _b64("s\u0661")])
def test_a_cursor_the_ledger_did_not_make_is_a_400(platform: Caller, cursor: str) -> None:
    post_reports(platform, 1, 2)
    response = platform.get("/v1/contributions", query_string={"cursor": cursor})
    assert_error(response, 400, "validation_error", {"cursor"})


def test_the_default_page_is_50_rows(platform: Caller) -> None:
    for n in range(51):
        platform.post("/v1/enrollments", {"worker_ref": f"x-{n}"})
    body = platform.get("/v1/enrollments").json
    assert (len(body["data"]), body["has_more"]) == (50, True)


def test_pages_come_newest_first_and_end_with_no_cursor(platform: Caller) -> None:
    ids = post_reports(platform, 1, 7)
    first = platform.get("/v1/contributions?limit=3").json
    assert [c["id"] for c in first["data"]] == ids[::-1][:3]
    assert first["has_more"] is True
    second = platform.get(f"/v1/contributions?limit=3&cursor={first['next_cursor']}").json
    assert [c["id"] for c in second["data"]] == ids[::-1][3:6]
    third = platform.get(f"/v1/contributions?limit=3&cursor={second['next_cursor']}").json
    assert [c["id"] for c in third["data"]] == ids[::-1][6:]
    assert (third["has_more"], third["next_cursor"]) == (False, None)


def test_a_list_that_fits_one_page_exactly_has_no_more(platform: Caller) -> None:
    post_reports(platform, 1, 3)
    body = platform.get("/v1/contributions?limit=3").json
    assert (len(body["data"]), body["has_more"], body["next_cursor"]) == (3, False, None)


def test_an_empty_list_is_one_empty_page(platform: Caller) -> None:
    assert platform.get("/v1/contributions").json == {"data": [], "has_more": False, "next_cursor": None}


@pytest.mark.parametrize("limit", [1, 2, 5])
def test_rows_that_existed_at_the_first_page_appear_once_while_new_rows_arrive(platform: Caller, limit: int) -> None:
    existing = post_reports(platform, 1, 9)
    counter = iter(range(100, 200))

    def insert_two(_: int) -> None:
        post_reports(platform, next(counter), 1)
        post_reports(platform, next(counter), 1)

    seen = [c["id"] for c in read_all(platform, "/v1/contributions", limit, insert_two)]
    assert len(seen) == len(set(seen))
    assert [i for i in seen if i in existing] == existing[::-1]


def test_enrollments_page_the_same_way_while_workers_enroll(platform: Caller) -> None:
    for n in range(6):
        platform.post("/v1/enrollments", {"worker_ref": f"x-{n}"})
    existing = [e["worker_ref"] for e in platform.get("/v1/enrollments?limit=500").json["data"]]
    counter = iter(range(100, 200))
    seen = [e["worker_ref"] for e in read_all(
        platform, "/v1/enrollments", 2,
        lambda _: platform.post("/v1/enrollments", {"worker_ref": f"late-{next(counter)}"}))]
    assert len(seen) == len(set(seen))
    assert [r for r in seen if r in existing] == existing


def test_a_filter_applies_to_every_page(platform: Caller) -> None:
    enroll(platform, "w-2")
    for n in range(5):
        platform.post("/v1/contributions", report(f"a-{n}", "w-1", PLAN_ID, 1000))
        platform.post("/v1/contributions", report(f"b-{n}", "w-2", PLAN_ID, 1000))
    assert len(read_all(platform, "/v1/contributions", 2)) == 10
    first = platform.get("/v1/contributions?worker_ref=w-2&limit=2").json
    second = platform.get(f"/v1/contributions?worker_ref=w-2&limit=2&cursor={first['next_cursor']}").json
    assert {c["worker_ref"] for c in first["data"] + second["data"]} == {"w-2"}
    assert [c["external_id"] for c in first["data"] + second["data"]] == ["b-4", "b-3", "b-2", "b-1"]


def test_member_entries_page_newest_first_without_repeats(app: Flask, admin: Caller, platform: Caller) -> None:
    member_id = platform.get("/v1/enrollments").json["data"][0]["member_id"]
    post_reports(platform, 1, 4)
    all_entries = admin.get(f"/v1/members/{member_id}/entries?limit=500").json["data"]
    assert len(all_entries) == 12
    paged = read_all(admin, f"/v1/members/{member_id}/entries", 5)
    assert paged == all_entries
