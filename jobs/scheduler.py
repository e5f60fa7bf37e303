"""``pbl scheduler``: APScheduler 3 in its own process, one leader at a time (DESIGN.md "Jobs").

The only module that imports APScheduler. Every ten minutes, at :05, :15, ... (never between
02:00 and 03:00 business time, the hour a daylight-saving change repeats or skips) the leader
runs every job through yesterday (``jobs.runs.run_due_jobs``): which dates are due comes from the
calendar and the jobs' state, never from when it fired, so downtime is caught up once and
a DST change neither skips nor repeats a date. Keyed job runs fence out a second process
that believes it leads.

Leadership: on PostgreSQL a session advisory lock held on a dedicated connection outside
the pool (pool recycling would drop it silently); on SQLite a lease row renewed each tick.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import psycopg
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session
from sqlmodel import col

from jobs.runs import JobContext, run_due_jobs
from ledger.config import Settings
from ledger.db import Database, insert_ignore, make_engine
from ledger.stripe_gateway import gateway_from_settings
from ledger.tables import SchedulerLease

log = logging.getLogger("pbl.scheduler")
#: pg_advisory_lock key: "pbl sched" as an integer
ADVISORY_KEY = 0x70626C5F7363
LEASE = timedelta(minutes=2)
LEASE_NAME = "pbl-scheduler"


class Leadership(Protocol):
    """Whether this process may run the jobs now."""

    def acquire(self) -> bool:
        """True when this process leads (taking the lead if it is free)."""
        ...

    def release(self) -> None:
        """Give the lead up (on shutdown)."""
        ...


class PostgresLeader:
    """A session advisory lock on a dedicated psycopg connection, outside SQLAlchemy's pool."""

    def __init__(self, database_url: str) -> None:
        self.conninfo = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
        self.conn: psycopg.Connection[Any] | None = None
        self.held = False

    def acquire(self) -> bool:
        """Hold the lock (re-taking it on a new connection if the old one died)."""
        try:
            if self.conn is None or self.conn.closed:
                self.conn, self.held = psycopg.connect(self.conninfo, autocommit=True), False
            self.conn.execute("SELECT 1")  # the session, and any lock it holds, is alive
            if not self.held:
                row = self.conn.execute("SELECT pg_try_advisory_lock(%s)", (ADVISORY_KEY,)).fetchone()
                self.held = bool(row and row[0])
            return self.held
        except psycopg.Error as exc:
            log.warning("leadership check failed: %s", exc)
            self.release()
            return False

    def release(self) -> None:
        """Close the dedicated connection (which releases the lock)."""
        if self.conn is not None:
            try:
                self.conn.close()
            finally:
                self.conn, self.held = None, False


class SqliteLeader:
    """A lease row: held while renewed before it expires, taken over once it has."""

    def __init__(self, db: Database, lease: timedelta = LEASE) -> None:
        self.db, self.lease = db, lease
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    def acquire(self) -> bool:
        """Renew the lease if ours, take it if expired; True when it is ours."""
        now = datetime.now(UTC)

        def run(session: Session) -> bool:
            insert_ignore(session, SchedulerLease.__table__, [  # type: ignore[attr-defined]
                {"name": LEASE_NAME, "holder": self.holder, "expires_at": now + self.lease}])
            row = session.scalar(select(SchedulerLease).where(col(SchedulerLease.name) == LEASE_NAME)
                                 .with_for_update())
            assert row is not None
            if row.holder != self.holder and row.expires_at > now:
                return False
            row.holder, row.expires_at = self.holder, now + self.lease
            return True

        return self.db.transaction(run)

    def release(self) -> None:
        """Let the lease lapse at once."""
        def run(session: Session) -> None:
            row = session.scalar(select(SchedulerLease).where(col(SchedulerLease.name) == LEASE_NAME))
            if row is not None and row.holder == self.holder:
                row.expires_at = datetime.now(UTC)

        self.db.transaction(run)


def leader_for(settings: Settings, db: Database) -> Leadership:
    """The leadership of this database's kind."""
    return PostgresLeader(settings.database_url) if db.dialect == "postgresql" else SqliteLeader(db)


def tick(ctx: JobContext, leader: Leadership) -> list[Any]:
    """Run what is due if this process leads (and it is not 02:00-03:00 business time)."""
    local = ctx.clock().astimezone(ctx.timezone)
    if local.hour == 2:
        log.info("02:00-03:00 business time: waiting")
        return []
    if not leader.acquire():
        log.info("standing by: another scheduler leads")
        return []
    runs = run_due_jobs(ctx)
    for run in runs:
        log.info("%s %s", run.key, run.status)
    return runs


def run_scheduler(settings: Settings, once: bool = False) -> None:
    """Run the scheduler in this process until stopped (or one tick with ``once``)."""
    db = Database(make_engine(settings.database_url))
    ctx = JobContext(db, lambda: datetime.now(UTC), settings.timezone, settings.remittance_due_day,
                     gateway_from_settings(settings))
    leader = leader_for(settings, db)
    if once:
        try:
            tick(ctx, leader)
        finally:
            leader.release()
        return
    scheduler = BlockingScheduler(timezone=settings.timezone)
    scheduler.add_job(
        # at :05, :15, ...: a posting stamped just before midnight has committed by the first tick
        tick, CronTrigger(hour="0-1,3-23", minute="5-59/10", timezone=settings.timezone), args=(ctx, leader),
        id="pbl-due-jobs", name="every job through yesterday", coalesce=True, max_instances=1,
        misfire_grace_time=600, replace_existing=True, next_run_time=datetime.now(settings.timezone),
    )
    log.info("scheduler started (timezone %s)", settings.timezone)
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        leader.release()
