"""The keyed job-run wrapper (DESIGN.md "Jobs"): what ``POST /v1/jobs/{name}/runs`` and
``pbl scheduler`` call.

Each job is a plain function ``(JobContext, through) -> counts``. ``run_job`` claims the key
``{name}:{through}`` (a key that succeeded never runs again), runs the job, and records
``succeeded`` with its counts or ``failed`` with the error (which may then be retried).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from ledger.db import Database
from ledger.errors import ConflictError, NotFoundError, ValidationError
from ledger.payments import PaymentsGateway
from ledger.services import job_runs
from ledger.tables import JobRun

#: the order the scheduler runs them in for a date: stipends and closing first, then accrual
JOB_ORDER = ("close_remittances", "accrual", "reconciliation")


@dataclass
class JobContext:
    """What every job needs: the database, a clock (aware UTC), the business timezone,
    the remittance due day and (for reconciliation) the payments gateway."""

    db: Database
    clock: Callable[[], datetime]
    timezone: ZoneInfo
    due_day: int = 15
    gateway: PaymentsGateway | None = None

    def today(self) -> date:
        """Today's business date."""
        return self.clock().astimezone(self.timezone).date()


def _accrual(ctx: JobContext, through: date) -> dict[str, Any]:
    from jobs.accrual import accrue_through

    return accrue_through(ctx.db, through, ctx.timezone, ctx.clock)


def _close(ctx: JobContext, through: date) -> dict[str, Any]:
    from jobs.close_remittances import close_through

    return close_through(ctx.db, through, ctx.timezone, ctx.due_day, ctx.clock)


def _reconcile(ctx: JobContext, through: date) -> dict[str, Any]:
    from jobs.reconciliation import run_reconciliation
    from ledger.services.reconciliation import present

    report = present(run_reconciliation(ctx.db, ctx.clock, ctx.gateway, ctx.today()))
    return {"reconciliation_id": report["id"], "ok": report["ok"], "exceptions": len(report["exceptions"])}


JOBS: dict[str, Callable[[JobContext, date], dict[str, Any]]] = {
    "accrual": _accrual, "close_remittances": _close, "reconciliation": _reconcile,
}


def default_through(ctx: JobContext) -> date:
    """Yesterday in the business timezone: the last date that is over."""
    return ctx.today() - timedelta(days=1)


def run_job(ctx: JobContext, name: str, through: date | None = None) -> tuple[JobRun, bool]:
    """Run job ``name`` through ``through`` (default yesterday); returns (run, ran now).

    Raises NotFoundError (unknown job), ValidationError (a date not yet over),
    ConflictError (the key is running elsewhere). A key that already succeeded returns
    that run and runs nothing. A job that raises is recorded ``failed`` and re-raised.
    """
    if name not in JOBS:
        raise NotFoundError(f"no job named {name!r}")
    through = through or default_through(ctx)
    if through >= ctx.today():
        raise ValidationError("that date is not over yet in the business timezone",
                              {"through": [f"Must be before today ({ctx.today().isoformat()})."]})
    claim = job_runs.claim(ctx.db, name, through, ctx.clock())
    if not claim.mine:
        return claim.run, False
    try:
        counts = JOBS[name](ctx, through)
    except Exception as exc:
        job_runs.finish(ctx.db, claim.run.id, {}, ctx.clock(), error=f"{type(exc).__name__}: {exc}")
        raise
    return job_runs.finish(ctx.db, claim.run.id, counts, ctx.clock()), True


def run_due_jobs(ctx: JobContext, names: tuple[str, ...] = JOB_ORDER) -> list[JobRun]:
    """Every job through yesterday, in ``JOB_ORDER``, skipping keys running elsewhere.

    Which dates are due comes from the calendar (yesterday in the business timezone) and
    the jobs' own state, never from when this was called: a daylight-saving change, a
    late firing or a scheduler that was down changes nothing.
    """
    done = []
    for name in names:
        try:
            run, _ = run_job(ctx, name)
        except ConflictError:
            continue
        done.append(run)
    return done
