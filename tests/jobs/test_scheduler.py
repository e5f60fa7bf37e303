"""DESIGN.md "Jobs": ``pbl scheduler`` (APScheduler 3), one leader at a time across
processes (a PostgreSQL session advisory lock, or an SQLite lease row), keyed job runs as
the fence; DOMAIN.md "Accrual": a scheduler that was down catches up every missed date
once, in order, and a daylight-saving change never skips or repeats a date.

``tick`` is what the scheduler fires every ten minutes; the tests call it with the test
clock and move the clock, so "which dates are due" comes from the calendar only.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from flask import Flask
from sqlalchemy import func, select

from jobs import scheduler as scheduler_module
from jobs.runs import JOB_ORDER, JobContext
from jobs.scheduler import Leadership, PostgresLeader, SqliteLeader, run_scheduler, tick
from ledger.config import Settings
from ledger.db import Database, make_engine
from ledger.tables import JobRun, SchedulerLease
from pbl.cli import main
from tests.conftest import BACKEND, Caller, Clock
from tests.jobs.conftest import (
    LOS_ANGELES,
    accrual_row,
    at,
    interest_entries,
    make_available,
    payer,
    set_rate,
    together,
)
from tests.scenarios.helpers import assert_books_balance

UTC_ZONE = ZoneInfo("UTC")


def url_of(database: Database) -> str:
    return database.engine.url.render_as_string(hide_password=False)


@pytest.fixture
def leaders(database: Database) -> Iterator[Callable[[Database], Leadership]]:
    """``leaders(db)``: a new leadership of the test database's kind over ``db`` (released at the end)."""
    made: list[Leadership] = []

    def make(db: Database) -> Leadership:
        leader: Leadership = PostgresLeader(url_of(db)) if db.dialect == "postgresql" else SqliteLeader(db)
        made.append(leader)
        return leader

    yield make
    for leader in made:
        leader.release()


class AlwaysLeads:
    """A leadership that always believes it leads (a partitioned or stale leader)."""

    def __init__(self) -> None:
        self.calls = 0

    def acquire(self) -> bool:
        self.calls += 1
        return True

    def release(self) -> None:
        pass


def job_runs(database: Database) -> list[tuple[str, str, int]]:
    """Every job run (key, status, attempts), oldest first."""
    return [tuple(r) for r in database.read(lambda s: s.execute(  # type: ignore[misc]
        select(JobRun.key, JobRun.status, JobRun.attempts).order_by(JobRun.seq)).all())]


def fire_times(trigger: Any, start: datetime, end: datetime) -> list[datetime]:
    """The trigger's fire times (UTC) from ``start`` to ``end``, as APScheduler computes them
    (each from the previous one); asserts they only move forward."""
    fired: list[datetime] = []
    moment: datetime = start
    while moment < end:
        assert len(fired) < 10_000, "the trigger does not move forward"
        nxt = trigger.get_next_fire_time(fired[-1] if fired else None, moment + timedelta(seconds=1))
        moment = nxt.astimezone(UTC)
        assert not fired or moment > fired[-1], (fired[-1], moment)
        fired.append(moment)
    return fired


def quiet_zone_now() -> str:
    """A timezone whose local hour is far from 02:00-03:00 right now (``--once`` uses the real clock)."""
    return "Asia/Tokyo" if datetime.now(UTC).hour in (0, 1, 2, 3) else "UTC"


# --- pbl scheduler --once -------------------------------------------------------------


def test_pbl_scheduler_once_on_an_sqlite_file_runs_every_due_job_once(tmp_path: Path) -> None:
    """API.md "Command line": ``pbl scheduler`` with ``PBL_DATABASE_URL`` an SQLite file;
    ``--once`` runs every job through yesterday (business timezone), records the keyed runs,
    gives its lease up, and a second ``--once`` runs nothing again."""
    url = f"sqlite:///{tmp_path / 'pbl.db'}"
    zone = quiet_zone_now()
    env = {"PBL_DATABASE_URL": url, "PBL_TIMEZONE": zone}
    runner = CliRunner()
    upgraded = runner.invoke(main, ["db", "upgrade"], env=env)
    assert upgraded.exit_code == 0, upgraded.output

    before = datetime.now(ZoneInfo(zone)).date() - timedelta(days=1)
    first = runner.invoke(main, ["scheduler", "--once"], env=env)
    after = datetime.now(ZoneInfo(zone)).date() - timedelta(days=1)
    second = runner.invoke(main, ["scheduler", "--once"], env=env)

    assert first.exit_code == 0, (first.output, first.exception)
    assert second.exit_code == 0, (second.output, second.exception)
    engine = make_engine(url)
    try:
        database = Database(engine)
        rows = job_runs(database)
        through = {r[0].split(":", 1)[1] for r in rows}
        assert len(through) == 1 and through.pop() in (before.isoformat(), after.isoformat())
        assert [(key.split(":")[0], status, attempts) for key, status, attempts in rows] == [
            (name, "succeeded", 1) for name in JOB_ORDER]
        lease = database.read(lambda s: s.scalar(select(SchedulerLease)))
        assert lease is not None and lease.expires_at <= datetime.now(UTC)
    finally:
        engine.dispose()


def test_pbl_scheduler_refuses_a_database_without_the_schema(tmp_path: Path) -> None:
    """``pbl scheduler`` on an empty database: an error naming ``pbl db upgrade``, exit status 1."""
    result = CliRunner().invoke(main, ["scheduler", "--once"],
                                env={"PBL_DATABASE_URL": f"sqlite:///{tmp_path / 'empty.db'}"})

    assert result.exit_code == 1
    assert "pbl db upgrade" in result.output


def test_pbl_scheduler_once_on_the_test_database_uses_its_kind_of_leadership(database: Database) -> None:
    """The same command on the test database (PostgreSQL: the advisory lock on a dedicated
    connection; SQLite: the lease row)."""
    zone = quiet_zone_now()
    result = CliRunner().invoke(main, ["scheduler", "--once"],
                                env={"PBL_DATABASE_URL": url_of(database), "PBL_TIMEZONE": zone})

    assert result.exit_code == 0, (result.output, result.exception)
    assert [(k.split(":")[0], s) for k, s, _ in job_runs(database)] == [(n, "succeeded") for n in JOB_ORDER]
    leases = database.read(lambda s: s.scalar(select(func.count()).select_from(SchedulerLease)))
    assert leases == (0 if BACKEND == "postgresql" else 1)


def test_the_scheduler_job_is_declared_as_designed_and_never_fires_between_02_and_03(
        database: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """DESIGN.md "Jobs": the job declares ``id``, ``coalesce=True``, ``max_instances=1``,
    ``misfire_grace_time``, ``replace_existing``, and fires outside 02:00-03:00 local time,
    across both 2022 daylight-saving changes in Los Angeles; stopping gives the lead up."""
    seen: dict[str, Any] = {}

    class Stopped(scheduler_module.BlockingScheduler):  # type: ignore[misc, name-defined]
        def start(self, *args: Any, **kwargs: Any) -> None:
            seen["jobs"] = self.get_jobs()
            raise KeyboardInterrupt

    monkeypatch.setattr(scheduler_module, "BlockingScheduler", Stopped)
    run_scheduler(Settings(database_url=url_of(database), timezone=LOS_ANGELES))

    (job,) = seen["jobs"]
    assert (job.id, job.coalesce, job.max_instances, job.misfire_grace_time) == ("pbl-due-jobs", True, 1, 600)
    fired = fire_times(job.trigger, datetime(2022, 3, 12, 8, tzinfo=UTC), datetime(2022, 3, 15, 8, tzinfo=UTC)) + \
        fire_times(job.trigger, datetime(2022, 11, 5, 7, tzinfo=UTC), datetime(2022, 11, 8, 8, tzinfo=UTC))
    local = [m.astimezone(LOS_ANGELES) for m in fired]
    assert {m.hour for m in local} == set(range(24)) - {2}
    assert all(m.minute % 10 == 5 and m.second == 0 for m in local)  # :05, :15, ... after midnight
    # the repeated 01:00 hour of 6 November fires in both offsets, in order
    assert [m.strftime("%H:%M%z") for m in local if (m.month, m.day, m.hour) == (11, 6, 1)] == [
        f"01:{minute:02d}{offset}" for offset in ("-0700", "-0800") for minute in range(5, 60, 10)]
    if BACKEND != "postgresql":
        lease = database.read(lambda s: s.scalar(select(SchedulerLease)))
        assert lease is None or lease.expires_at <= datetime.now(UTC)


# --- leadership -----------------------------------------------------------------------


def test_only_one_sqlite_leader_leads_until_its_lease_lapses(database: Database, second_database: Database) -> None:
    """DESIGN.md "Jobs": on SQLite a lock row with a lease: renewed by its holder, taken over
    by another only once it has lapsed (or been given up)."""
    lease = timedelta(seconds=1)
    a, b = SqliteLeader(database, lease), SqliteLeader(second_database, lease)
    try:
        assert a.acquire() is True
        assert b.acquire() is False
        time.sleep(0.6)
        assert a.acquire() is True  # renewed: another second from now
        time.sleep(0.6)
        assert b.acquire() is False  # 1.2 s after a first took it, but a renewed it
        time.sleep(0.6)
        assert b.acquire() is True  # lapsed
        assert a.acquire() is False
        b.release()
        assert a.acquire() is True  # given up: free at once
        assert b.acquire() is False
    finally:
        a.release()
        b.release()


@pytest.mark.skipif(BACKEND != "postgresql", reason="PostgreSQL advisory locks")
def test_only_one_postgres_leader_holds_the_advisory_lock_until_it_lets_go(database: Database) -> None:
    """DESIGN.md "Jobs": on PostgreSQL a session advisory lock on a dedicated connection: one
    holder; after it releases (or its connection dies) another takes it, and the first,
    reconnecting, stands by."""
    a, b = PostgresLeader(url_of(database)), PostgresLeader(url_of(database))
    try:
        assert a.acquire() is True
        assert b.acquire() is False
        assert a.acquire() is True  # still held
        assert b.acquire() is False
        a.release()
        assert b.acquire() is True
        assert a.acquire() is False
        assert b.conn is not None
        b.conn.close()  # its session ends: the server drops the lock
        deadline = time.monotonic() + 10
        while not a.acquire():
            assert time.monotonic() < deadline, "the lock of a closed session was never freed"
            time.sleep(0.05)
        assert b.acquire() is False  # reconnected, standing by
    finally:
        a.release()
        b.release()


# --- tick -----------------------------------------------------------------------------


def test_tick_runs_every_job_through_yesterday_in_order_and_only_once(
        ctx: JobContext, database: Database, leaders: Callable[[Database], Leadership], admin: Caller) -> None:
    """``tick``: the leader runs every job through yesterday (``close_remittances``,
    ``accrual``, ``reconciliation``); ticking again runs nothing new."""
    leader = leaders(database)

    runs = tick(ctx, leader)
    again = tick(ctx, leader)

    assert [r.key for r in runs] == [f"{name}:2026-07-14" for name in JOB_ORDER]
    assert [r.id for r in again] == [r.id for r in runs]
    assert job_runs(database) == [(f"{name}:2026-07-14", "succeeded", 1) for name in JOB_ORDER]
    assert_books_balance(admin)


@pytest.mark.parametrize(("zone", "now"), [
    (UTC_ZONE, "2026-07-15T02:00"), (UTC_ZONE, "2026-07-15T02:59"),
    (LOS_ANGELES, "2026-07-15T09:30"),  # 02:30 PDT
    (LOS_ANGELES, "2022-11-06T10:30"),  # 02:30 PST, after the repeated hour
])
def test_tick_waits_between_02_and_03_business_time(
        database: Database, clock: Clock, zone: ZoneInfo, now: str) -> None:
    """DESIGN.md "Jobs": nothing fires between 02:00 and 03:00 local time (the hour a
    daylight-saving change skips or repeats); leadership is not even asked."""
    clock.now = at(now)
    leader = AlwaysLeads()

    assert tick(JobContext(database, clock, zone), leader) == []
    assert (leader.calls, job_runs(database)) == (0, [])
    clock.now += timedelta(hours=1)
    assert tick(JobContext(database, clock, zone), leader) != []


def test_a_standby_scheduler_runs_nothing(
        ctx: JobContext, database: Database, second_database: Database,
        leaders: Callable[[Database], Leadership], clock: Clock) -> None:
    """One leader at a time: the second scheduler's tick stands by while the first leads."""
    first, second = leaders(database), leaders(second_database)

    assert tick(ctx, first) != []
    clock.now += timedelta(days=1)
    assert tick(JobContext(second_database, clock, UTC_ZONE), second) == []
    assert [k for k, _, _ in job_runs(database)] == [f"{name}:2026-07-14" for name in JOB_ORDER]


def thousand_in_may(app: Flask, admin: Caller, clock: Clock) -> str:
    """1,000.00 available in healthcare since 30 April 2026 at 4% from 1 May; clock on 1 June 12:00."""
    clock.now = at("2026-04-30T12:00")
    member_id = make_available(admin, payer(app, admin), clock, "w-1", 100_000)
    set_rate(admin, "healthcare", 400, "2026-05-01")
    clock.now = at("2026-06-01T12:00")
    return member_id


def test_two_schedulers_ticking_at_once_post_the_interest_once(
        app: Flask, admin: Caller, clock: Clock, database: Database, second_database: Database,
        leaders: Callable[[Database], Leadership]) -> None:
    """Two scheduler processes (two engines, two leaderships) tick at the same moment: one
    leads and runs, the other stands by; May's 339 is posted once."""
    member_id = thousand_in_may(app, admin, clock)
    pairs = [(JobContext(db, clock, UTC_ZONE), leaders(db)) for db in (database, second_database)]

    results = together([lambda c=c, leader=leader: tick(c, leader) for c, leader in pairs])

    assert not [r for r in results if isinstance(r, Exception)], results
    assert sorted(len(r) for r in results) == [0, 3]
    assert [e["amount_minor"] for e in interest_entries(admin, member_id)] == [339]
    assert accrual_row(database, member_id).carry_numerator == 2_650_000
    assert job_runs(database) == [(f"{name}:2026-05-31", "succeeded", 1) for name in JOB_ORDER]
    assert_books_balance(admin)


def test_two_schedulers_that_both_believe_they_lead_are_fenced_by_the_run_keys(
        app: Flask, admin: Caller, clock: Clock, database: Database, second_database: Database) -> None:
    """DESIGN.md "Jobs": "The job-run key is the fence either way": two schedulers that both
    think they lead run each key once between them; 339 is posted once."""
    member_id = thousand_in_may(app, admin, clock)
    contexts = [JobContext(db, clock, UTC_ZONE) for db in (database, second_database)]

    results = together([lambda c=c: tick(c, AlwaysLeads()) for c in contexts])

    assert not [r for r in results if isinstance(r, Exception)], results
    assert [e["amount_minor"] for e in interest_entries(admin, member_id)] == [339]
    assert accrual_row(database, member_id).carry_numerator == 2_650_000
    assert sorted(job_runs(database)) == sorted((f"{name}:2026-05-31", "succeeded", 1) for name in JOB_ORDER)
    assert_books_balance(admin)


def test_a_scheduler_down_from_the_1st_23h_to_the_4th_01h_accrues_the_1st_2nd_and_3rd_once_each(
        app: Flask, admin: Caller, clock: Clock, database: Database,
        leaders: Callable[[Database], Leadership]) -> None:
    """DOMAIN.md "Accrual": a scheduler that was down catches up every missed date once, in
    order; a date is accrued only once it is over. 1,000.00 at 4% since 20 May: May posts
    12 x 40,000,000 -> 131 (carry 1,850,000). Down from 1 June 23:00 to 4 June 01:00: the
    tick at 01:00 accrues 1, 2 and 3 June on 1,001.31: 1,850,000 + 3 x 100,131 x 400 =
    122,007,200 = 33 whole units, carry 1,557,200; nothing for the 4th."""
    clock.now = at("2026-05-20T12:00")
    member_id = make_available(admin, payer(app, admin), clock, "w-1", 100_000)
    set_rate(admin, "healthcare", 400, "2026-01-01")
    ctx = JobContext(database, clock, UTC_ZONE)
    leader = leaders(database)

    clock.now = at("2026-06-01T00:10")
    tick(ctx, leader)
    may = accrual_row(database, member_id)
    assert (may.last_accrued_date, may.accrued_minor, may.carry_numerator) == (date(2026, 5, 31), 0, 1_850_000)
    assert [(e["amount_minor"], e["effective_at"]) for e in interest_entries(admin, member_id)] == [
        (131, "2026-06-01T00:00:00Z")]
    clock.now = at("2026-06-01T23:00")
    tick(ctx, leader)
    assert accrual_row(database, member_id) == may

    clock.now = at("2026-06-04T01:00")  # back up
    runs = {r.name: r for r in tick(ctx, leader)}

    assert runs["accrual"].key == "accrual:2026-06-03"
    assert json.loads(runs["accrual"].counts_json)["dates"] == 3
    june = accrual_row(database, member_id)
    assert (june.last_accrued_date, june.accrued_minor, june.carry_numerator) == (date(2026, 6, 3), 33, 1_557_200)
    assert june.numerator - may.numerator == 3 * 100_131 * 400
    for later in ("2026-06-04T01:10", "2026-06-04T12:00", "2026-06-04T23:50"):
        clock.now = at(later)
        tick(ctx, leader)
        assert accrual_row(database, member_id) == june
    assert [k for k, _, _ in job_runs(database) if k.startswith("accrual:")] == [
        "accrual:2026-05-31", "accrual:2026-06-03"]
    assert [e["amount_minor"] for e in interest_entries(admin, member_id)] == [131]
    assert_books_balance(admin)


@pytest.mark.parametrize(("available_at", "first", "last"), [
    ("2022-03-12T20:00", "2022-03-12T21:00", "2022-03-16T12:00"),  # spring forward, 13 March
    ("2022-11-05T19:00", "2022-11-05T20:00", "2022-11-09T12:00"),  # fall back, 6 November
])
def test_hourly_ticks_across_a_daylight_saving_change_accrue_each_los_angeles_date_once(
        la_app: Flask, la_admin: Caller, clock: Clock, database: Database,
        leaders: Callable[[Database], Leadership], available_at: str, first: str, last: str) -> None:
    """DOMAIN.md "Accrual": a daylight-saving change never skips or repeats a date. A
    scheduler ticking every hour (UTC) for four days around the change accrues each Los
    Angeles date once, in order: one accrual run per date, one date each, and the
    numerator is exactly (dates) x 100,000 x 400."""
    clock.now = at(available_at)
    member_id = make_available(la_admin, payer(la_app, la_admin), clock, "w-1", 100_000, tz=LOS_ANGELES)
    set_rate(la_admin, "healthcare", 400, "2022-01-01")
    ctx = JobContext(database, clock, LOS_ANGELES)
    leader = leaders(database)
    start = clock.now.astimezone(LOS_ANGELES).date()

    clock.now = at(first)
    while clock.now <= at(last):
        tick(ctx, leader)
        clock.now += timedelta(hours=1)

    accruals = database.read(lambda s: s.execute(select(JobRun.through, JobRun.counts_json)
                                                 .where(JobRun.name == "accrual").order_by(JobRun.seq)).all())
    dated = [(through, json.loads(counts)) for through, counts in accruals]
    accrued = [(through, counts["from"], counts["dates"]) for through, counts in dated if counts["dates"]]
    assert accrued == [(start + timedelta(days=i), (start + timedelta(days=i)).isoformat(), 1) for i in range(4)]
    assert [through for through, _ in dated] == sorted({through for through, _ in dated})  # one run per date
    row = accrual_row(database, member_id)
    assert row.last_accrued_date == start + timedelta(days=3)
    assert row.numerator == 4 * 100_000 * 400
    assert_books_balance(la_admin)
