"""``Idempotency-Key`` on POST (API.md "Conventions").

The same key from the same API key on the same method and path with the same JSON
(compared parsed) returns the first answer again, status and body; another body: 400
``idempotency_error``; while the first still runs: 409 ``idempotency_in_progress``. A key
is 1-255 printable ASCII characters (else 400 ``validation_error``). Answers of 500 or
more are not kept. Keys are kept at least 24 hours.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
import requests
from flask import Flask

from ledger.services import contributions as contribution_service
from tests.api.conftest import PLAN_ID, World, assert_error
from tests.conftest import Caller, Clock, new_caller
from tests.factories import report

KEY = "Idempotency-Key"
REPORT = report("idem-1", "w-1", PLAN_ID, 50000)


def post(caller: Caller, path: str, body: Any, key: str, **kwargs: Any) -> Any:
    return caller.post(path, body, headers={KEY: key}, **kwargs)


def contribution_count(world: World) -> int:
    return len(world.platform.get("/v1/contributions?limit=500").json["data"])


def pending_total(world: World) -> int:
    total: int = world.admin.get(f"/v1/members/{world.member_id}/balances").json["total"]["pending_minor"]
    return total


def test_the_same_key_and_body_return_the_first_answer_and_post_once(world: World) -> None:
    first = post(world.platform, "/v1/contributions", REPORT, "k-1")
    again = post(world.platform, "/v1/contributions", REPORT, "k-1")
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.data == first.data
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert contribution_count(world) == 2
    assert pending_total(world) == 4000 + 2000
    assert world.admin.post("/v1/ledger/verify").json["ok"] is True


def test_the_same_json_written_differently_is_the_same_request(world: World) -> None:
    first = post(world.platform, "/v1/contributions", REPORT, "k-1")
    reordered = json.dumps(dict(reversed(list(REPORT.items()))), indent=4)
    again = world.platform.client.post("/v1/contributions", data=reordered, content_type="application/json",
                                       headers=world.platform.headers({KEY: "k-1"}))
    assert (again.status_code, again.data) == (201, first.data)
    assert contribution_count(world) == 2


def test_the_same_key_with_another_body_is_an_idempotency_error(world: World) -> None:
    first = post(world.platform, "/v1/contributions", REPORT, "k-1")
    before = world.state()
    other = post(world.platform, "/v1/contributions", {**REPORT, "gross_earnings_minor": 50001}, "k-1")
    assert_error(other, 400, "idempotency_error", {KEY})
    assert world.state() == before
    assert post(world.platform, "/v1/contributions", REPORT, "k-1").data == first.data


def test_the_same_key_with_another_query_is_an_idempotency_error(world: World) -> None:
    body = {"external_id": "b-1", "currency": "USD", "lines": [REPORT]}
    dry = post(world.platform, "/v1/remittances?dry_run=true", body, "k-1")
    assert dry.status_code == 200
    before = world.state()
    assert_error(post(world.platform, "/v1/remittances?dry_run=false", body, "k-1"), 400, "idempotency_error", {KEY})
    assert world.state() == before


def test_a_key_is_scoped_to_its_api_key_and_path(app: Flask, world: World) -> None:
    first = post(world.platform, "/v1/contributions", REPORT, "k-1")
    second_key = new_caller(app, world.admin, "platform", contributor_id="dash")
    other_caller = post(second_key, "/v1/contributions", REPORT, "k-1")
    assert other_caller.status_code == 200  # the same report again, answered by the ledger, not the key store
    assert other_caller.json == first.json
    assert "Idempotent-Replayed" not in other_caller.headers
    other_path = post(world.platform, "/v1/remittances", {"external_id": "b-1", "currency": "USD",
                                                          "lines": [report("idem-2", "w-1", PLAN_ID, 100)]}, "k-1")
    assert other_path.status_code == 201
    assert contribution_count(world) == 3


def test_an_error_answer_below_500_is_kept_and_replayed(world: World) -> None:
    bad = {**REPORT, "worker_ref": "w-2"}
    first = post(world.platform, "/v1/contributions", bad, "k-1")
    assert_error(first, 422, "validation_error", {"worker_ref"})
    world.platform.post("/v1/enrollments", {"worker_ref": "w-2"})
    again = post(world.platform, "/v1/contributions", bad, "k-1")
    assert (again.status_code, again.data, again.headers["Idempotent-Replayed"]) == (422, first.data, "true")
    assert contribution_count(world) == 1


def test_keys_are_kept_for_24_hours(world: World, clock: Clock) -> None:
    first = post(world.platform, "/v1/contributions", REPORT, "k-1")
    clock.now += timedelta(hours=23, minutes=59)
    again = post(world.platform, "/v1/contributions", REPORT, "k-1")
    assert (again.status_code, again.data) == (201, first.data)
    assert contribution_count(world) == 2


@pytest.mark.parametrize("key", ["k" * 256, "", "k-\x01", "k-\x7f", "k-\t", "k-\u00e9", "k 1\x00"])
def test_a_key_that_is_not_1_to_255_printable_ascii_characters_is_a_400(world: World, key: str) -> None:
    before = world.state()
    response = world.platform.client.post("/v1/contributions", json=REPORT,
                                          headers={**world.platform.headers(), KEY: key})
    assert_error(response, 400, "validation_error", {KEY})
    assert world.state() == before


@pytest.mark.parametrize("key", ["k" * 255, "k", " ~!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}"])
def test_a_key_of_1_to_255_printable_ascii_characters_is_accepted(world: World, key: str) -> None:
    first = post(world.platform, "/v1/contributions", REPORT, key)
    again = post(world.platform, "/v1/contributions", REPORT, key)
    assert (first.status_code, again.status_code, again.data) == (201, 201, first.data)


def test_a_key_on_a_very_long_path_is_no_500(world: World) -> None:
    path = "/v1/contributions/ctb_" + "x" * 3000 + "/reversal"
    response = post(world.platform, path, {"reason": "typo"}, "k-1")
    assert_error(response, 404, "not_found", set())


def test_an_answer_of_500_or_more_is_not_kept(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the disk caught fire")

    with monkeypatch.context() as patch:
        patch.setattr(contribution_service, "post_report", broken)
        failed = post(world.platform, "/v1/contributions", REPORT, "k-1")
    assert_error(failed, 500, "internal_error", set())
    retried = post(world.platform, "/v1/contributions", REPORT, "k-1")
    assert retried.status_code == 201
    assert "Idempotent-Replayed" not in retried.headers
    assert contribution_count(world) == 2


def test_a_get_ignores_the_key(world: World) -> None:
    response = world.platform.get("/v1/contributions", headers={KEY: "k" * 300})
    assert response.status_code == 200


# -- concurrency over a real server ------------------------------------------------------------


def _post_many(live_server: str, caller: Caller, body: dict[str, Any], headers: dict[str, str],
               count: int = 20) -> list[requests.Response]:
    def one(_: int) -> requests.Response:
        return requests.post(f"{live_server}/v1/contributions", json=body, timeout=60,
                             headers={"Authorization": f"Bearer {caller.key}", **headers})

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(one, range(count)))


def test_twenty_concurrent_requests_with_one_key_post_once(live_server: str, world: World) -> None:
    answers = _post_many(live_server, world.platform, REPORT, {KEY: "k-concurrent"})
    created = [a for a in answers if a.status_code == 201]
    in_progress = [a for a in answers if a.status_code == 409]
    assert len(created) + len(in_progress) == 20, [(a.status_code, a.text) for a in answers]
    assert created, [(a.status_code, a.text) for a in answers]
    assert len({a.content for a in created}) == 1
    for answer in in_progress:
        assert answer.json()["type"] == "idempotency_in_progress"
        assert answer.headers["Retry-After"] == "1"
    assert contribution_count(world) == 2
    assert pending_total(world) == 4000 + 2000
    assert world.admin.post("/v1/ledger/verify").json["ok"] is True
    replay = post(world.platform, "/v1/contributions", REPORT, "k-concurrent")
    assert (replay.status_code, replay.data) == (201, created[0].content)


def test_twenty_concurrent_copies_of_one_report_without_a_key_post_once(live_server: str, world: World) -> None:
    answers = _post_many(live_server, world.platform, REPORT, {})
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200] * 19 + [201], [(a.status_code, a.text) for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    assert contribution_count(world) == 2
    assert pending_total(world) == 4000 + 2000
    assert world.admin.post("/v1/ledger/verify").json["ok"] is True


# -- retries without a key: the ledger's own external ids ----------------------------------------


def test_the_same_report_again_answers_200_with_the_first_contribution(world: World) -> None:
    first = world.platform.post("/v1/contributions", REPORT)
    again = world.platform.post("/v1/contributions", REPORT)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json == first.json
    assert contribution_count(world) == 2
    assert pending_total(world) == 6000


def test_another_report_under_a_used_external_id_is_a_conflict(world: World) -> None:
    world.platform.post("/v1/contributions", REPORT)
    before = world.state()
    response = world.platform.post("/v1/contributions", {**REPORT, "tips_minor": 1})
    assert_error(response, 409, "conflict", {"external_id"})
    assert world.state() == before


def test_the_same_remittance_again_answers_200_with_the_first_and_another_is_a_conflict(world: World) -> None:
    body = {"external_id": "b-1", "currency": "USD",
            "lines": [report(f"l-{n}", "w-1", PLAN_ID, 10000) for n in range(3)]}
    first = world.platform.post("/v1/remittances", body)
    assert (first.status_code, first.json["line_count"], first.json["amount_due_minor"]) == (201, 3, 1200)
    again = world.platform.post("/v1/remittances", body)
    assert (again.status_code, again.json) == (200, first.json)
    before = world.state()
    other = world.platform.post("/v1/remittances", {**body, "lines": body["lines"][:2]})
    assert_error(other, 409, "conflict", {"external_id"})
    assert world.state() == before
    assert contribution_count(world) == 4


def test_a_dry_run_computes_and_records_nothing(world: World) -> None:
    body = {"external_id": "b-1", "currency": "USD",
            "lines": [report(f"l-{n}", "w-1", PLAN_ID, 10000) for n in range(3)]}
    before = world.state()
    dry = world.platform.post("/v1/remittances?dry_run=true", body)
    assert dry.status_code == 200
    assert (dry.json["dry_run"], dry.json["line_count"], dry.json["amount_due_minor"]) == (True, 3, 1200)
    assert [line["amount_minor"] for line in dry.json["lines"]] == [400, 400, 400]
    assert dry.json["lines"][0] == {
        "external_id": "l-0", "member_id": world.member_id, "worker_ref": "w-1", "plan_id": PLAN_ID,
        "amount_minor": 400, "allocations": {"healthcare": 200, "retirement": 120, "training": 80},
        "eligible": True, "status": "pending"}
    assert world.state() == before
    real = world.platform.post("/v1/remittances", body)
    assert (real.status_code, real.json["amount_due_minor"]) == (201, 1200)
