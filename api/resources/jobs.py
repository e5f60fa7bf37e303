"""Crediting rates and job runs (API.md): accrual, remittance closing, reconciliation on demand."""

from __future__ import annotations

import functools
from typing import Any

from marshmallow import Schema, fields, validate

from api.blueprint import Blueprint
from api.context import db, gateway, now, require_role, roles, state
from api.presenters import page
from jobs.runs import JOBS, JobContext, run_job
from ledger.errors import NotFoundError
from ledger.money import BUCKETS
from ledger.services import crediting_rates, job_runs
from schemas.common import ListQuery, StrictSchema, page_of
from schemas.fields import ExactDate, StrictInteger, Timestamp

blp = Blueprint("jobs", __name__, url_prefix="/v1", description="Crediting rates and scheduled jobs")


class CreditingRateIn(StrictSchema):
    """``{bucket, annual_rate_bps, effective_from}``: rates up to 100,000 bps."""

    bucket = fields.String(required=True, validate=validate.OneOf(BUCKETS))
    annual_rate_bps = StrictInteger(0, 100_000, required=True)
    effective_from = ExactDate(required=True)


class CreditingRateOut(Schema):
    """A bucket's rate from a date."""

    bucket = fields.String()
    annual_rate_bps = fields.Integer()
    effective_from = fields.Date()
    created_at = Timestamp()


class RateQuery(ListQuery):
    """``?bucket=`` plus paging."""

    bucket = fields.String(validate=validate.OneOf(BUCKETS))


class JobRunIn(StrictSchema):
    """``{through?}``: the last business date to run (default yesterday)."""

    through = ExactDate()


class JobRunOut(Schema):
    """A keyed run: ``key`` is ``{name}:{through}``."""

    id = fields.String()
    key = fields.String()
    name = fields.String()
    through = fields.Date()
    status = fields.String()
    attempts = fields.Integer()
    counts = fields.Dict()
    error = fields.String(allow_none=True)
    started_at = Timestamp()
    finished_at = Timestamp(allow_none=True)


class JobRunQuery(ListQuery):
    """``?name=`` plus paging."""

    name = fields.String(validate=validate.OneOf(sorted(JOBS)))


@blp.route("/crediting-rates", methods=["POST"])
@roles("admin")
@blp.arguments(CreditingRateIn)
@blp.response(201, CreditingRateOut)
def create_rate(body: dict[str, Any]) -> Any:
    """A bucket's annual crediting rate from a date; it applies to dates not yet accrued."""
    require_role("admin")
    return crediting_rates.create_rate(db(), body["bucket"], body["annual_rate_bps"], body["effective_from"], now())


@blp.route("/crediting-rates", methods=["GET"])
@roles("admin")
@blp.arguments(RateQuery, location="query", error_status_code=400)
@blp.response(200, page_of(CreditingRateOut, "CreditingRatePage"))
def list_rates(query: dict[str, Any]) -> Any:
    """Rates, newest first."""
    require_role("admin")
    return page(crediting_rates.list_rates(db(), query["limit"], query["cursor"], query.get("bucket")))


def job_context() -> JobContext:
    """The jobs' view of this app: database, clock, timezone, due day, gateway."""
    app = state()
    return JobContext(app.db, app.clock, app.settings.timezone, app.settings.remittance_due_day, gateway())


def known_job(view: Any) -> Any:
    """404 for a job name that does not exist, before the body is validated."""

    @functools.wraps(view)
    def checked(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("name") not in JOBS:
            raise NotFoundError(f"no job named {kwargs.get('name')!r}")
        return view(*args, **kwargs)

    return checked


@blp.route("/jobs/<string:name>/runs", methods=["POST"])
@roles("admin")
@known_job
@blp.arguments(JobRunIn, required=False)
@blp.response(201, JobRunOut)
@blp.alt_response(200, schema=JobRunOut, description="The key already succeeded: that run, nothing posted")
def create_run(body: dict[str, Any], name: str) -> Any:
    """Run ``accrual``, ``close_remittances`` or ``reconciliation`` through a date (default yesterday)."""
    require_role("admin")
    run, ran = run_job(job_context(), name, (body or {}).get("through"))
    return job_runs.present(run), 201 if ran else 200


@blp.route("/jobs/runs", methods=["GET"])
@roles("admin")
@blp.arguments(JobRunQuery, location="query", error_status_code=400)
@blp.response(200, page_of(JobRunOut, "JobRunPage"))
def list_runs(query: dict[str, Any]) -> Any:
    """Job runs, newest first."""
    require_role("admin")
    return page(job_runs.list_runs(db(), query["limit"], query["cursor"], query.get("name")), job_runs.present)
