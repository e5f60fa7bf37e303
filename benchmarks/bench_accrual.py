"""Benchmark of the daily accrual job over many member buckets; prints figures, asserts nothing.

    python benchmarks/bench_accrual.py [--buckets 1000000] [--sqlite 30000] [--keep] [--vacuum] [--explain 1,2,4]

On a PostgreSQL database of its own (``PBL_TEST_POSTGRES_URL`` names the server; dropped at
the end unless ``--keep``), migrated, it loads with ``INSERT ... SELECT generate_series`` (not
measured) ``--buckets`` member "available" accounts (members x 3 buckets, USD, positive
balances), each funded by one seed entry from ``cash:bank`` (a few large ledger transactions,
so the ledger's verify checks hold), and a crediting rate for each bucket. Then it measures
``jobs.accrual.accrue_through`` for:

1. the first date (seed date: creates every bucket's accrual row),
2. an ordinary day, 3. a second ordinary day,
4. the month end (posts every bucket's interest: one ledger transaction with a leg per bucket),
5. the month end again (already accrued: nothing to do), and ``accrue_day`` run directly on it,
6. the first ordinary day after the month end (entries have doubled).

It prints seconds and buckets per second per step; after step 5 it checks the interest posted
and every bucket's carry against an independent computation, and at the end times ``verify``.
``--vacuum`` runs VACUUM ANALYZE (not measured) before each step, as autovacuum would between two
daily runs (without it, each day's dead row versions stay: a server with autovacuum off).
``--sqlite N`` runs the same on a temporary SQLite file with N buckets. ``--explain 1,2`` (PostgreSQL)
prints the plans of every statement of those steps (auto_explain, with ANALYZE: slower).
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from jobs.accrual import DAY_DENOMINATOR, accrue_day, accrue_through, rates_by_bucket
from ledger.db import Database, create_database, drop_database, make_engine
from ledger.migrate import upgrade
from ledger.services.reports import verify
from ledger.tables import UTCDateTime

POSTGRES_URL = os.environ.get("PBL_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
TZ = ZoneInfo("UTC")
#: the seed money is recorded on this date; the month ends three days later
SEED_DAY = date(2026, 1, 28)
MONTH_END = date(2026, 1, 31)
RATES_BPS = {"healthcare": 400, "retirement": 500, "training": 250}
#: accounts funded per seed ledger transaction (each is checked by a deferred trigger at commit)
SEED_CHUNK = 250_000
#: accrued days before the month-end post: SEED_DAY through MONTH_END
DAYS_BEFORE_POST = (MONTH_END - SEED_DAY).days + 1


@contextmanager
def fresh_database(kind: str, keep: bool) -> Iterator[str]:
    """A new, migrated database URL, dropped afterwards unless ``keep``."""
    if kind == "sqlite":
        folder = tempfile.mkdtemp(prefix="pbl_bench_accrual_")
        url = f"sqlite:///{Path(folder) / 'bench.db'}"
        _migrate(url)
        try:
            yield url
        finally:
            if keep:
                print(f"kept {url}")
            else:
                for file in Path(folder).iterdir():
                    file.unlink()
                Path(folder).rmdir()
        return
    name = f"pbl_bench_accrual_{uuid.uuid4().hex[:10]}"
    url = create_database(POSTGRES_URL, name)
    try:
        _migrate(url)
        yield url
    finally:
        if keep:
            print(f"kept database {name}: {url}")
        else:
            drop_database(POSTGRES_URL, name)


def _migrate(url: str) -> None:
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()


def _sql(engine: Engine) -> dict[str, str]:
    """The dialect's pieces of the load statements: a series 1..n of BIGINT ``i``, and hex."""
    if engine.dialect.name == "postgresql":
        return {"series": "SELECT i FROM generate_series(CAST(1 AS BIGINT), CAST(:n AS BIGINT)) AS s(i)",
                "hex": "lpad(to_hex({}), 20, '0')"}
    return {"series": "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < :n) SELECT i FROM s",
            "hex": "printf('%020x', {})"}


def load(engine: Engine, buckets: int) -> None:
    """``buckets`` member accounts (seq 1..buckets), each funded by one entry from ``cash:bank``
    effective on SEED_DAY, in ledger transactions of SEED_CHUNK accounts; crediting rates."""
    parts = _sql(engine)
    at = datetime.combine(SEED_DAY, datetime.min.time(), UTC) + timedelta(hours=12)
    stamp = sa.bindparam("at", at, type_=UTCDateTime)
    member = parts["hex"].format("(i - 1) / 3 + 1")
    bucket = ("CASE (i - 1) % 3 WHEN 0 THEN 'healthcare' WHEN 1 THEN 'retirement' ELSE 'training' END")
    # 10.00 to 50,009.99 USD, spread over the buckets
    balance = "1000 + (i * 7919) % 5000000"
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO accounts (seq, name, currency, kind, normal, member_id, bucket, state, balance_minor) "
            f"SELECT i, 'member:mem_' || m || ':' || b || '\\:available', 'USD', 'member', 'credit', 'mem_' || m, b, "
            f"'available', bal FROM (SELECT i, {member} AS m, {bucket} AS b, {balance} AS bal "
            f"FROM ({parts['series']}) AS series) AS rows"), {"n": buckets})
        total = conn.execute(sa.text("SELECT SUM(balance_minor) FROM accounts")).scalar_one()
        conn.execute(sa.text(
            "INSERT INTO accounts (seq, name, currency, kind, normal, balance_minor) "
            "VALUES (:seq, 'cash:bank', 'USD', 'cash', 'debit', :total)"), {"seq": buckets + 1, "total": total})
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT setval(pg_get_serial_sequence('accounts', 'seq'), :seq)"),
                         {"seq": buckets + 1})
        running = 0
        for chunk, low in enumerate(range(1, buckets + 1, SEED_CHUNK)):
            high = min(buckets, low + SEED_CHUNK - 1)
            txn = f"txn_seed{chunk:016x}"
            conn.execute(sa.text(
                "INSERT INTO ledger_transactions (id, kind, currency, memo, effective_at, created_at) "
                "VALUES (:txn, 'seed', 'USD', 'benchmark seed', :at, :at)").bindparams(stamp), {"txn": txn})
            conn.execute(sa.text(
                "INSERT INTO entries (id, transaction_id, account_seq, amount_minor, balance_after_minor, kind, "
                f"effective_at, created_at) SELECT 'ent_' || {parts['hex'].format('seq')}, :txn, seq, "
                "-balance_minor, balance_minor, 'seed', :at, :at FROM accounts WHERE seq BETWEEN :low AND :high "
                "ORDER BY seq").bindparams(stamp), {"txn": txn, "low": low, "high": high})
            moved = conn.execute(sa.text("SELECT SUM(balance_minor) FROM accounts WHERE seq BETWEEN :low AND :high"),
                                 {"low": low, "high": high}).scalar_one()
            running += moved
            conn.execute(sa.text(
                "INSERT INTO entries (id, transaction_id, account_seq, amount_minor, balance_after_minor, kind, "
                "effective_at, created_at) VALUES (:id, :txn, :seq, :moved, :running, 'seed', :at, :at)")
                .bindparams(stamp), {"id": f"ent_seedcash{chunk:012x}", "txn": txn, "seq": buckets + 1,
                                     "moved": moved, "running": running})
        for name, bps in RATES_BPS.items():
            conn.execute(sa.text(
                "INSERT INTO crediting_rates (bucket, annual_rate_bps, effective_from, created_at) "
                "VALUES (:bucket, :bps, :start, :at)").bindparams(stamp),
                {"bucket": name, "bps": bps, "start": date(2025, 1, 1)})
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM ANALYZE"))
    else:
        with engine.begin() as conn:
            conn.execute(sa.text("ANALYZE"))


def check(engine: Engine) -> dict[str, int]:
    """Interest posted and carries against an independent computation: each bucket's seed
    balance x rate x DAYS_BEFORE_POST, over 3,650,000 (the balance does not move until then)."""
    rate = " ".join(f"WHEN '{b}' THEN {bps}" for b, bps in RATES_BPS.items())
    numerator = f"(CAST(-e.amount_minor AS BIGINT) * (CASE a.bucket {rate} END) * {DAYS_BEFORE_POST})"
    with engine.connect() as conn:
        row = conn.execute(sa.text(
            f"SELECT SUM({numerator} / {DAY_DENOMINATOR}), "
            f"SUM(CASE WHEN c.carry_numerator = {numerator} % {DAY_DENOMINATOR} THEN 0 ELSE 1 END), "
            "SUM(CASE WHEN c.seq IS NULL THEN 1 ELSE 0 END) "
            "FROM accounts a JOIN entries e ON e.account_seq = a.seq AND e.kind = 'seed' "
            "LEFT JOIN accruals c ON c.account_seq = a.seq WHERE a.kind = 'member'")).one()
        posted = conn.execute(sa.text(
            "SELECT COALESCE(SUM(e.amount_minor), 0), COUNT(*) FROM entries e JOIN accounts a ON a.seq = e.account_seq "
            "WHERE a.name = 'interest_expense'")).one()
        interest_legs = conn.execute(sa.text("SELECT COUNT(*) FROM entries WHERE kind = 'interest'")).scalar_one()
    return {"expected_interest": int(row[0] or 0), "posted_interest": int(posted[0]),
            "interest_transactions": int(posted[1]), "interest_entries": int(interest_legs),
            "carry_mismatches": int(row[1] or 0), "buckets_without_accrual": int(row[2] or 0)}


@contextmanager
def explained(engine: Engine) -> Iterator[None]:
    """Print the plan (EXPLAIN ANALYZE, via auto_explain) of every statement run inside."""
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        with dbapi_connection.cursor() as cursor:
            cursor.execute("LOAD 'auto_explain'")
            cursor.execute("SET auto_explain.log_min_duration = 0")
            cursor.execute("SET auto_explain.log_analyze = on")
            cursor.execute("SET auto_explain.log_buffers = on")
            cursor.execute("SET auto_explain.log_nested_statements = on")
            cursor.execute("SET client_min_messages = log")
        dbapi_connection.add_notice_handler(lambda notice: print(f"  [{notice.severity}] {notice.message_primary}"))

    engine.dispose()
    sa.event.listen(engine, "connect", on_connect)
    try:
        yield
    finally:
        sa.event.remove(engine, "connect", on_connect)
        engine.dispose()


def vacuum(engine: Engine) -> None:
    """What autovacuum would have done between two daily runs (not measured)."""
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM ANALYZE accruals, accounts, entries, ledger_transactions"))


def step(label: str, fn: Callable[[], dict[str, Any]], buckets: int, explain: Callable[[], Any] | None = None,
         before: Callable[[], None] | None = None) -> None:
    """Run and time one step (after ``before``, not timed); with ``explain`` (a context manager
    factory) print its plans too."""
    if before:
        before()
    with explain() if explain else nullcontext():
        began = time.perf_counter()
        counts = fn()
        seconds = time.perf_counter() - began
    rate = f"{buckets / seconds:>12,.0f}" if counts.get("buckets") else f"{'-':>12}"
    interest = counts.get("interest_minor") or {}
    print(f"  {label:44}{seconds:>9.2f}{counts.get('buckets', 0):>10,}{rate}{counts.get('postings', 0):>6}"
          f"  {interest}", flush=True)


def bench(kind: str, buckets: int, keep: bool, explain: frozenset[str], vacuum_between: bool) -> None:
    note = ", VACUUM ANALYZE before each step" if vacuum_between and kind == "postgresql" else ""
    print(f"{kind}: {buckets:,} member buckets ({-(-buckets // 3):,} members x 3){note}", flush=True)
    with fresh_database(kind, keep) as url:
        engine = make_engine(url)
        began = time.perf_counter()
        load(engine, buckets)
        print(f"  loaded in {time.perf_counter() - began:.1f} s (not measured below)", flush=True)
        db = Database(engine)
        now = datetime(2026, 3, 1, 9, tzinfo=UTC)

        def through(day: date) -> Callable[[], dict[str, Any]]:
            return lambda: accrue_through(db, day, TZ, lambda: now)

        def again(day: date) -> dict[str, Any]:
            rates = db.read(rates_by_bucket)
            touched, posted = db.transaction(lambda s: accrue_day(s, day, TZ, rates, now))
            return {"buckets": touched, "postings": len(posted), "interest_minor": posted}

        print(f"  {'step':44}{'seconds':>9}{'buckets':>10}{'buckets/s':>12}{'posts':>6}  interest posted", flush=True)
        def plans(number: str) -> Callable[[], AbstractContextManager[None]] | None:
            return (lambda: explained(engine)) if number in explain and kind == "postgresql" else None

        before = (lambda: vacuum(engine)) if vacuum_between else None

        ordinary = SEED_DAY + timedelta(days=1)
        step(f"1. first date {SEED_DAY} (creates accruals)", through(SEED_DAY), buckets, plans("1"), before)
        step(f"2. ordinary day {ordinary}", through(ordinary), buckets, plans("2"), before)
        second = ordinary + timedelta(days=1)
        step(f"3. ordinary day {second}", through(second), buckets, plans("3"), before)
        step(f"4. month end {MONTH_END} (posts interest)", through(MONTH_END), buckets, plans("4"), before)
        step("5a. month end again (accrue_through)", through(MONTH_END), buckets, plans("5a"), before)
        step("5b. month end again (accrue_day directly)", lambda: again(MONTH_END), buckets, plans("5b"), before)
        found = check(engine)
        after = MONTH_END + timedelta(days=1)
        step(f"6. ordinary day {after} (after the post)", through(after), buckets, plans("6"), before)
        ok = (found["posted_interest"] == found["expected_interest"] and not found["carry_mismatches"]
              and not found["buckets_without_accrual"])
        print(f"  check after the month end: {'ok' if ok else 'MISMATCH'} {found}", flush=True)
        began = time.perf_counter()
        checks = verify(db)
        failed = [c.name for c in checks if not c.ok]
        print(f"  verify: {'ok' if not failed else 'FAILED ' + ', '.join(failed)} "
              f"({time.perf_counter() - began:.1f} s); peak RSS of this process so far "
              f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB", flush=True)
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--buckets", type=int, default=1_000_000, help="PostgreSQL member buckets (0: skip)")
    parser.add_argument("--sqlite", type=int, default=0, metavar="N", help="also run on SQLite with N buckets")
    parser.add_argument("--keep", action="store_true", help="keep the database(s)")
    parser.add_argument("--vacuum", action="store_true",
                        help="VACUUM ANALYZE (not measured) before each step, as autovacuum would between days")
    parser.add_argument("--explain", default="", metavar="STEPS",
                        help="print the plans of these steps, e.g. 1,2,4 (PostgreSQL, EXPLAIN ANALYZE)")
    args = parser.parse_args()
    if args.buckets:
        bench("postgresql", args.buckets, args.keep, frozenset(args.explain.split(",")) - {""}, args.vacuum)
    if args.sqlite:
        bench("sqlite", args.sqlite, args.keep, frozenset(), False)


if __name__ == "__main__":
    main()
