"""Benchmark of the HTTP API on SQLite and PostgreSQL; prints figures, asserts nothing.

    python benchmarks/bench_api.py [--database sqlite|postgresql|both] [--remittances 3] [--samples 500]

For each database it starts ``pbl serve`` (waitress) in a subprocess over a fresh
database, loads 10,000 enrolled workers directly (setup is not measured), then measures
over real HTTP from this process:
- remittance lines per second: ``POST /v1/remittances`` of 10,000 lines each;
- p50/p99 latency of single ``POST /v1/contributions``;
- p50/p99 latency of ``GET /v1/members/{id}/balances``.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import requests
import sqlalchemy as sa

from ledger.db import Database, create_database, drop_database, make_engine
from ledger.ids import new_id
from ledger.migrate import upgrade
from ledger.services.keys import create_key
from pbl.client import ApiClient

POSTGRES_URL = os.environ.get("PBL_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
WORKERS = 10_000
LINES = 10_000


@contextmanager
def fresh_database(kind: str) -> Iterator[str]:
    """A new, migrated database URL, dropped afterwards."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            url = f"sqlite:///{Path(folder) / 'bench.db'}"
            engine = make_engine(url)
            upgrade(engine)
            engine.dispose()
            yield url
        return
    name = f"pbl_bench_{uuid.uuid4().hex[:10]}"
    url = create_database(POSTGRES_URL, name)
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    try:
        yield url
    finally:
        drop_database(POSTGRES_URL, name)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def server(url: str) -> Iterator[str]:
    """``pbl serve`` in a subprocess; yields its base URL once /healthz answers."""
    port = free_port()
    env = {**os.environ, "PBL_DATABASE_URL": url}
    process = subprocess.Popen([sys.executable, "-m", "pbl.cli", "serve", "--port", str(port)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if requests.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.05)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


def load_workers(url: str) -> tuple[str, str, list[str]]:
    """Contributor, plan, 10,000 members and enrollments, inserted directly; returns keys and member ids."""
    engine = make_engine(url)
    now = datetime.now(UTC)
    members = [new_id("mem") for _ in range(WORKERS)]
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO contributors (id, name, kind, currency, created_at) "
                             "VALUES ('bench', 'Bench', 'platform', 'USD', :now)"), {"now": now})
        conn.execute(sa.text(
            "INSERT INTO plans (id, contributor_id, basis, rate_bps, earnings_basis, period, min_earnings_minor, "
            "eligibility_persists_periods, paid_by, allocation_mode, allocation_healthcare_bps, "
            "allocation_retirement_bps, allocation_training_bps, effective_from, created_at) VALUES "
            "('bench-4pct', 'bench', 'percent_of_earnings', 400, 'pre_tip', 'month', 0, 0, 'reports', 'fixed', "
            "5000, 3000, 2000, '2025-01-01', :now)"), {"now": now})
        conn.execute(sa.text("INSERT INTO members (id, created_at) VALUES (:id, :now)"),
                     [{"id": m, "now": now} for m in members])
        conn.execute(sa.text("INSERT INTO enrollments (contributor_id, worker_ref, member_id, created_at) "
                             "VALUES ('bench', :ref, :member, :now)"),
                     [{"ref": f"w-{i}", "member": m, "now": now} for i, m in enumerate(members)])
    database = Database(engine)
    _, admin = create_key(database, "admin", "bench admin", now)
    _, platform = create_key(database, "platform", "bench platform", now, contributor_id="bench")
    engine.dispose()
    return admin, platform, members


def month(index: int) -> tuple[str, str]:
    year, m = 2025 + index // 12, index % 12 + 1
    ends = [31, 29 if year % 4 == 0 else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
    return f"{year}-{m:02d}-01", f"{year}-{m:02d}-{ends[m - 1]}"


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def bench(kind: str, remittances: int, samples: int) -> dict[str, float]:
    with fresh_database(kind) as url:
        admin_key, platform_key, members = load_workers(url)
        with server(url) as base:
            platform, admin = ApiClient(base, platform_key), ApiClient(base, admin_key)
            rates = []
            for r in range(remittances):
                start, end = month(r)
                lines = [{"external_id": f"r{r}-{i}", "worker_ref": f"w-{i}", "plan_id": "bench-4pct",
                          "period_start": start, "period_end": end, "currency": "USD",
                          "gross_earnings_minor": 100_000 + i, "tips_minor": 0} for i in range(LINES)]
                began = time.perf_counter()
                platform.post("/v1/remittances", {"external_id": f"bench-{r}", "currency": "USD", "lines": lines})
                rates.append(LINES / (time.perf_counter() - began))
            posts = []
            for i in range(samples):
                start, end = month(remittances + i // WORKERS)
                body = {"external_id": f"single-{i}", "worker_ref": f"w-{i % WORKERS}", "plan_id": "bench-4pct",
                        "period_start": start, "period_end": end, "currency": "USD", "gross_earnings_minor": 12_345}
                began = time.perf_counter()
                platform.post("/v1/contributions", body)
                posts.append((time.perf_counter() - began) * 1000)
            reads = []
            for i in range(samples):
                began = time.perf_counter()
                admin.get(f"/v1/members/{members[i % WORKERS]}/balances")
                reads.append((time.perf_counter() - began) * 1000)
            ok = admin.post("/v1/ledger/verify")["ok"]
    post_p50, post_p99 = percentiles(posts)
    read_p50, read_p99 = percentiles(reads)
    return {"lines_per_s": statistics.median(rates), "lines_per_s_min": min(rates), "post_p50_ms": post_p50,
            "post_p99_ms": post_p99, "get_p50_ms": read_p50, "get_p99_ms": read_p99, "verify_ok": float(ok)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--remittances", type=int, default=3)
    parser.add_argument("--samples", type=int, default=500)
    args = parser.parse_args()
    kinds = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    print(f"{'database':12}{'lines/s (median)':>18}{'lines/s (min)':>15}{'POST p50 ms':>13}{'POST p99 ms':>13}"
          f"{'GET p50 ms':>12}{'GET p99 ms':>12}  verify")
    for kind in kinds:
        r = bench(kind, args.remittances, args.samples)
        print(f"{kind:12}{r['lines_per_s']:>18,.0f}{r['lines_per_s_min']:>15,.0f}{r['post_p50_ms']:>13.1f}"
              f"{r['post_p99_ms']:>13.1f}{r['get_p50_ms']:>12.1f}{r['get_p99_ms']:>12.1f}  "
              f"{'ok' if r['verify_ok'] else 'FAILED'}", flush=True)


if __name__ == "__main__":
    main()
