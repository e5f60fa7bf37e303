"""Keyed job runs (DESIGN.md "Jobs"): ``{name}:{through}``, claimed once, recorded always.

A key that succeeded never runs again; a failed run is recorded and may be retried; a run
still ``running`` holds a lease (an hour), after which another process may take it over
(its process died). The jobs themselves are idempotent per business date too, so the key
is a fence, not the only guard.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlmodel import col

from ledger.db import Database, fetch
from ledger.errors import ConflictError
from ledger.ids import new_id
from ledger.pagination import Page, paginate
from ledger.tables import JobRun

LEASE = timedelta(hours=1)


@dataclass(frozen=True)
class Claim:
    """The outcome of claiming a key: the row, and whether this caller must run it."""

    run: JobRun
    mine: bool


def run_key(name: str, through: date) -> str:
    """``accrual:2026-04-30`` (API.md)."""
    return f"{name}:{through.isoformat()}"


def claim(db: Database, name: str, through: date, now: datetime) -> Claim:
    """Claim ``{name}:{through}``: a new or failed key (or one whose lease ran out) is ours.

    Raises ConflictError when another process is running it right now.
    """
    key = run_key(name, through)

    def run(session: Session) -> Claim:
        row = session.scalar(select(JobRun).where(col(JobRun.key) == key).with_for_update()
                             .execution_options(populate_existing=True))
        if row is None:
            row = JobRun(id=new_id("run"), key=key, name=name, through=through, status="running", attempts=1,
                         lease_until=now + LEASE, started_at=now)
            session.add(row)
            session.flush()
            return Claim(row, True)
        if row.status == "succeeded":
            return Claim(row, False)
        if row.status == "running" and row.lease_until is not None and row.lease_until > now:
            raise ConflictError(f"job run {key} is running in another process", {"through": ["Already running."]})
        row.status, row.attempts, row.error = "running", row.attempts + 1, None
        row.lease_until, row.started_at, row.finished_at = now + LEASE, now, None
        return Claim(row, True)

    return db.transaction(run)


def finish(db: Database, run_id: str, counts: dict[str, Any], now: datetime, error: str | None = None) -> JobRun:
    """Record the outcome of a claimed run: ``succeeded`` with its counts, or ``failed`` with ``error``."""

    def run(session: Session) -> JobRun:
        row = fetch(session, JobRun, run_id, "job run")
        session.refresh(row, with_for_update=True)
        row.status = "failed" if error else "succeeded"
        row.counts_json = json.dumps(counts, sort_keys=True, default=str)
        row.error = error[:2000] if error else None
        row.finished_at, row.lease_until = now, None
        return row

    return db.transaction(run)


def succeeded_through(db: Database, name: str) -> date | None:
    """The latest ``through`` of a successful run of ``name``."""
    return db.read(lambda s: s.scalar(select(col(JobRun.through)).where(
        col(JobRun.name) == name, col(JobRun.status) == "succeeded").order_by(col(JobRun.through).desc()).limit(1)))


def list_runs(db: Database, limit: int, cursor: str | None, name: str | None = None) -> Page[JobRun]:
    """Job runs, newest first."""
    query = select(JobRun)
    if name is not None:
        query = query.where(col(JobRun.name) == name)
    return db.read(lambda s: paginate(s, query, JobRun.seq, limit, cursor))


def present(row: JobRun) -> dict[str, Any]:
    """A run as the API shows it: ``{id, key, name, through, status, counts, started_at, finished_at}``."""
    return {"id": row.id, "key": row.key, "name": row.name, "through": row.through, "status": row.status,
            "attempts": row.attempts, "counts": json.loads(row.counts_json or "{}"), "error": row.error,
            "started_at": row.started_at, "finished_at": row.finished_at}
