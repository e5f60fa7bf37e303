"""API.md rows ``POST /v1/jobs/{name}/runs``, ``GET /v1/jobs/runs`` and ``POST/GET
/v1/crediting-rates``; DESIGN.md "Jobs" (keyed job runs: a key that succeeded never runs
again, a failed run is recorded and may be retried).

The clock stands at 2026-07-15T12:00Z unless a test moves it, so "yesterday" is 14 July.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from flask import Flask

from jobs import runs as job_module
from jobs.runs import JobContext, run_job
from ledger.db import Database
from ledger.services import crediting_rates, job_runs
from tests.conftest import Caller, Clock, new_caller
from tests.jobs.conftest import at, run, together
from tests.scenarios.helpers import assert_books_balance, platform

RUN_FIELDS = {"id", "key", "name", "through", "status", "counts", "started_at", "finished_at"}


def test_a_run_defaults_to_yesterday_and_answers_the_contract_shape(admin: Caller) -> None:
    """API.md: ``{through?}`` defaults to yesterday in the business timezone -> 201 run
    ``{id, key, name, through, status, counts, started_at, finished_at}``, key ``{name}:{through}``."""
    body = run(admin, "accrual")

    assert set(body) >= RUN_FIELDS
    assert body["id"].startswith("run_")
    assert (body["key"], body["name"], body["through"], body["status"]) == (
        "accrual:2026-07-14", "accrual", "2026-07-14", "succeeded")
    assert body["counts"] == {"from": None, "dates": 0, "buckets": 0, "postings": 0, "interest_minor": {}}
    assert (body["started_at"], body["finished_at"]) == ("2026-07-15T12:00:00Z", "2026-07-15T12:00:00Z")
    assert admin.get("/v1/jobs/runs").json["data"] == [body]
    assert_books_balance(admin)


def test_a_run_without_a_body_runs_through_yesterday(admin: Caller) -> None:
    """API.md: the body ``{through?}`` is optional as a whole too."""
    response = admin.client.post("/v1/jobs/close_remittances/runs", headers=admin.headers())

    assert response.status_code == 201, response.json
    assert response.json["key"] == "close_remittances:2026-07-14"


@pytest.mark.parametrize("name", ["accrual", "close_remittances", "reconciliation"])
def test_every_job_runs_through_a_given_date_with_key_name_colon_date(admin: Caller, name: str) -> None:
    """API.md: ``name`` in ``accrual``, ``reconciliation``, ``close_remittances``; the
    key is ``{name}:{through}``; the same key again -> 200 with that run."""
    first = run(admin, name, "2026-07-01")
    again = run(admin, name, "2026-07-01", status=200)

    assert (first["key"], first["status"]) == (f"{name}:2026-07-01", "succeeded")
    assert again == first
    assert_books_balance(admin)


def test_reconciliation_run_counts_its_report(admin: Caller) -> None:
    """A reconciliation run stores a report (without Stripe it still checks the ledger) and names it."""
    body = run(admin, "reconciliation")

    report = admin.get(f"/v1/reconciliations/{body['counts']['reconciliation_id']}")
    assert report.status_code == 200, report.json
    assert (body["counts"]["ok"], body["counts"]["exceptions"]) == (True, 0)


@pytest.mark.parametrize("through", ["2026-07-15", "2026-07-16", "2027-01-01"])
def test_a_date_not_yet_over_is_422_and_nothing_is_recorded(admin: Caller, through: str) -> None:
    """API.md: a ``through`` not yet over (today or later in the business timezone) -> 422."""
    response = admin.post("/v1/jobs/accrual/runs", {"through": through})

    assert response.status_code == 422, response.json
    assert (response.json["type"], list(response.json["errors"])) == ("validation_error", ["through"])
    assert admin.get("/v1/jobs/runs").json["data"] == []


def test_yesterday_is_the_business_timezone_s_yesterday(
        la_admin: Caller, clock: Clock) -> None:
    """API.md: the default ``through`` is yesterday in the business timezone: at 03:00 UTC on
    15 July it is still the 14th in Los Angeles, so yesterday is the 13th and the 14th is not over."""
    clock.now = at("2026-07-15T03:00")

    refused = la_admin.post("/v1/jobs/accrual/runs", {"through": "2026-07-14"})
    body = run(la_admin, "accrual")

    assert refused.status_code == 422, refused.json
    assert (body["through"], body["key"]) == ("2026-07-13", "accrual:2026-07-13")


@pytest.mark.parametrize("body", [
    {"through": "2026-7-1"}, {"through": "2026-07-01T00:00:00Z"}, {"through": 20260701}, {"through": None},
    {"through": "2026-02-30"}, {"through": "2026-07-01", "shard": "0/1"},
])
def test_a_bad_run_body_is_422(admin: Caller, body: dict[str, Any]) -> None:
    """API.md "Conventions": dates exactly ``YYYY-MM-DD``; unknown fields 422."""
    response = admin.post("/v1/jobs/accrual/runs", body)

    assert response.status_code == 422, response.json
    assert response.json["type"] == "validation_error"


def test_an_unknown_job_name_is_404(admin: Caller) -> None:
    """API.md: ``name`` in ``accrual``, ``reconciliation``, ``close_remittances``; another -> 404."""
    response = admin.post("/v1/jobs/payroll/runs", {"through": "2026-07-01"})

    assert (response.status_code, response.json["type"]) == (404, "not_found")
    assert admin.get("/v1/jobs/runs").json["data"] == []


def test_runs_are_listed_newest_first_with_paging_and_a_name_filter(admin: Caller) -> None:
    """API.md "Conventions": lists are newest first, ``{data, has_more, next_cursor}``."""
    made = [run(admin, "accrual", "2026-07-10"), run(admin, "close_remittances", "2026-07-12"),
            run(admin, "reconciliation"), run(admin, "accrual", "2026-07-11")]

    listed = admin.get("/v1/jobs/runs").json
    first = admin.get("/v1/jobs/runs?limit=3").json
    rest = admin.get(f"/v1/jobs/runs?limit=3&cursor={first['next_cursor']}").json
    accrual = admin.get("/v1/jobs/runs?name=accrual").json

    assert [r["id"] for r in listed["data"]] == [r["id"] for r in reversed(made)]
    assert (listed["has_more"], listed["next_cursor"]) == (False, None)
    assert first["has_more"] is True
    assert [r["id"] for r in first["data"] + rest["data"]] == [r["id"] for r in reversed(made)]
    assert [r["key"] for r in accrual["data"]] == ["accrual:2026-07-11", "accrual:2026-07-10"]
    assert admin.get("/v1/jobs/runs?name=payroll").status_code == 400


def test_jobs_and_rates_are_for_administrators_only(app: Flask, admin: Caller) -> None:
    """API.md "Authentication and roles": an endpoint a role can never use -> 403 ``forbidden``."""
    dash = platform(app, admin, "dash")
    member_id = admin.post("/v1/members", {}).json["id"]
    member = new_caller(app, admin, "member", member_id=member_id)

    for caller in (dash, member):
        for response in (caller.post("/v1/jobs/accrual/runs", {"through": "2026-07-01"}),
                         caller.get("/v1/jobs/runs"),
                         caller.post("/v1/crediting-rates", {"bucket": "healthcare", "annual_rate_bps": 400,
                                                             "effective_from": "2026-07-01"}),
                         caller.get("/v1/crediting-rates")):
            assert (response.status_code, response.json["type"]) == (403, "forbidden")
    assert admin.get("/v1/jobs/runs").json["data"] == []
    assert admin.get("/v1/crediting-rates").json["data"] == []


def test_a_failed_run_is_recorded_and_may_be_retried(
        ctx: JobContext, admin: Caller, monkeypatch: pytest.MonkeyPatch) -> None:
    """DESIGN.md "Jobs": a failed run is recorded (``failed``, with the error) and may be
    retried under the same key, which then succeeds once."""
    real = job_module.JOBS["accrual"]

    def broken(_ctx: JobContext, _through: date) -> dict[str, Any]:
        raise RuntimeError("disk on fire")

    monkeypatch.setitem(job_module.JOBS, "accrual", broken)
    with pytest.raises(RuntimeError):
        run_job(ctx, "accrual", date(2026, 7, 1))
    (failed,) = admin.get("/v1/jobs/runs").json["data"]
    assert (failed["key"], failed["status"], failed["attempts"], failed["error"]) == (
        "accrual:2026-07-01", "failed", 1, "RuntimeError: disk on fire")

    monkeypatch.setitem(job_module.JOBS, "accrual", real)
    body = run(admin, "accrual", "2026-07-01")

    assert (body["id"], body["status"], body["attempts"], body["error"]) == (failed["id"], "succeeded", 2, None)
    assert run(admin, "accrual", "2026-07-01", status=200)["attempts"] == 2


def test_a_key_running_elsewhere_is_409_until_its_lease_runs_out(
        admin: Caller, database: Database, clock: Clock) -> None:
    """``ledger.services.job_runs``: a run still ``running`` holds its key (409 ``conflict``)
    for its lease (an hour); after that its process is taken for dead and the key may be run."""
    claim = job_runs.claim(database, "accrual", date(2026, 7, 1), clock.now)
    assert claim.mine

    busy = admin.post("/v1/jobs/accrual/runs", {"through": "2026-07-01"})
    clock.now += job_runs.LEASE + timedelta(seconds=1)
    taken = run(admin, "accrual", "2026-07-01")

    assert (busy.status_code, busy.json["type"]) == (409, "conflict")
    assert (taken["id"], taken["status"], taken["attempts"]) == (claim.run.id, "succeeded", 2)


def test_a_crediting_rate_is_created_and_listed_newest_first(admin: Caller) -> None:
    """API.md: ``POST /v1/crediting-rates`` ``{bucket, annual_rate_bps, effective_from}`` -> 201;
    ``GET`` lists them newest first, ``?bucket=`` filters."""
    made = admin.post("/v1/crediting-rates", {"bucket": "healthcare", "annual_rate_bps": 400,
                                              "effective_from": "2026-01-01"})
    admin.post("/v1/crediting-rates", {"bucket": "retirement", "annual_rate_bps": 100_000,
                                       "effective_from": "2026-01-01"})
    admin.post("/v1/crediting-rates", {"bucket": "healthcare", "annual_rate_bps": 0, "effective_from": "2026-08-01"})

    assert made.status_code == 201, made.json
    assert (made.json["bucket"], made.json["annual_rate_bps"], made.json["effective_from"]) == (
        "healthcare", 400, "2026-01-01")
    listed = admin.get("/v1/crediting-rates").json["data"]
    assert [(r["bucket"], r["annual_rate_bps"], r["effective_from"]) for r in listed] == [
        ("healthcare", 0, "2026-08-01"), ("retirement", 100_000, "2026-01-01"), ("healthcare", 400, "2026-01-01")]
    healthcare = admin.get("/v1/crediting-rates?bucket=healthcare").json["data"]
    assert [r["annual_rate_bps"] for r in healthcare] == [0, 400]


@pytest.mark.parametrize(("body", "field"), [
    ({"bucket": "healthcare", "annual_rate_bps": 100_001, "effective_from": "2026-07-01"}, "annual_rate_bps"),
    ({"bucket": "healthcare", "annual_rate_bps": -1, "effective_from": "2026-07-01"}, "annual_rate_bps"),
    ({"bucket": "healthcare", "annual_rate_bps": 400.0, "effective_from": "2026-07-01"}, "annual_rate_bps"),
    ({"bucket": "healthcare", "annual_rate_bps": "400", "effective_from": "2026-07-01"}, "annual_rate_bps"),
    ({"bucket": "vacation", "annual_rate_bps": 400, "effective_from": "2026-07-01"}, "bucket"),
    ({"bucket": "Healthcare", "annual_rate_bps": 400, "effective_from": "2026-07-01"}, "bucket"),
    ({"bucket": "healthcare", "annual_rate_bps": 400, "effective_from": "2026-7-1"}, "effective_from"),
    ({"bucket": "healthcare", "annual_rate_bps": 400}, "effective_from"),
    ({"bucket": "healthcare", "annual_rate_bps": 400, "effective_from": "2026-07-01", "currency": "USD"},
     "currency"),
])
def test_a_bad_crediting_rate_is_422_on_its_field(admin: Caller, body: dict[str, Any], field: str) -> None:
    """API.md "Conventions": rates ``<= 100,000`` bps, integers only, dates exactly
    ``YYYY-MM-DD``, unknown fields 422; buckets are ``healthcare``, ``retirement``, ``training``."""
    response = admin.post("/v1/crediting-rates", body)

    assert response.status_code == 422, response.json
    assert (response.json["type"], list(response.json["errors"])) == ("validation_error", [field])
    assert admin.get("/v1/crediting-rates").json["data"] == []


def test_a_second_rate_for_the_same_bucket_and_date_is_409(admin: Caller) -> None:
    """A bucket has one rate per effective date: the same bucket and date again -> 409
    ``conflict`` (another bucket on that date is fine)."""
    body = {"bucket": "training", "annual_rate_bps": 250, "effective_from": "2026-07-01"}
    assert admin.post("/v1/crediting-rates", body).status_code == 201

    again = admin.post("/v1/crediting-rates", {**body, "annual_rate_bps": 300})
    other = admin.post("/v1/crediting-rates", {**body, "bucket": "healthcare"})

    assert (again.status_code, again.json["type"]) == (409, "conflict")
    assert other.status_code == 201, other.json
    assert [(r["bucket"], r["annual_rate_bps"]) for r in admin.get("/v1/crediting-rates").json["data"]] == [
        ("healthcare", 250), ("training", 250)]


def test_the_same_rate_posted_twice_at_once_is_recorded_once(
        database: Database, second_database: Database, clock: Clock) -> None:
    """The bucket and date are unique in the database too: two processes posting the same
    rate at once record one, the other gets ConflictError (409)."""
    results = together([lambda db=db: crediting_rates.create_rate(db, "healthcare", 400, date(2026, 7, 1), clock.now)
                        for db in (database, second_database)])

    assert sorted(type(r).__name__ for r in results) == ["ConflictError", "CreditingRate"], results
    page = crediting_rates.list_rates(database, 50, None)
    assert [(r.bucket, r.annual_rate_bps, r.effective_from) for r in page.data] == [
        ("healthcare", 400, date(2026, 7, 1))]
