"""The demo's seeded input: workers on three real-program platforms, and a quarter of
monthly remittance CSV files per platform (columns as recordkeepers use them, no names).

The three contributors follow DOMAIN.md's "Real programs":
- ``dashline``: a delivery platform paying 4% of pre-tip earnings, $1,000 quarterly
  threshold (DoorDash pilots);
- ``rideway``: a rideshare platform paying a quarterly health stipend of $1,074.00 by
  Massachusetts-style hour tiers (50% from 15 h/week, 100% from 25 h/week over 13 weeks);
- ``sparkle``: a cleaning marketplace paying $5 per job (Alia).
"""

from __future__ import annotations

import calendar
import random
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

SPLIT_DEFAULT = {"healthcare": 5000, "retirement": 3000, "training": 2000}

CONTRIBUTORS: list[dict[str, Any]] = [
    {"id": "dashline", "name": "Dashline Delivery", "kind": "platform", "currency": "USD"},
    {"id": "rideway", "name": "Rideway", "kind": "platform", "currency": "USD"},
    {"id": "sparkle", "name": "Sparkle Cleaning Marketplace", "kind": "platform", "currency": "USD"},
]


def plans(effective_from: date) -> dict[str, dict[str, Any]]:
    """One plan per contributor, keyed by contributor id."""
    start = effective_from.isoformat()
    return {
        "dashline": {"id": "dashline-4pct-pretip", "basis": "percent_of_earnings", "rate_bps": 400,
                     "earnings_basis": "pre_tip", "period": "quarter", "min_earnings_minor": 100000,
                     "allocation_mode": "member_election", "allocation": SPLIT_DEFAULT, "effective_from": start},
        "rideway": {"id": "rideway-ma-health", "basis": "flat_per_period", "amount_minor": 107400,
                    "period": "quarter", "proration": {"method": "tiers", "tiers": [
                        {"min_minutes": 15 * 13 * 60, "percent_bps": 5000},
                        {"min_minutes": 25 * 13 * 60, "percent_bps": 10000}]},
                    "allocation_mode": "fixed",
                    "allocation": {"healthcare": 10000, "retirement": 0, "training": 0}, "effective_from": start},
        "sparkle": {"id": "sparkle-5-per-job", "basis": "per_job", "amount_minor": 500, "period": "month",
                    "allocation_mode": "member_election",
                    "allocation": {"healthcare": 5000, "retirement": 2500, "training": 2500},
                    "effective_from": start},
    }


ELECTIONS = [
    {"healthcare": 10000, "retirement": 0, "training": 0},
    {"healthcare": 2000, "retirement": 7000, "training": 1000},
    {"healthcare": 3334, "retirement": 3333, "training": 3333},
    {"healthcare": 6000, "retirement": 2000, "training": 2000},
]


@dataclass
class Worker:
    """One person: their id at each platform they work for, and an election (or none)."""

    number: int
    refs: dict[str, str] = field(default_factory=dict)
    election: dict[str, int] | None = None


def make_workers(count: int, rng: random.Random) -> list[Worker]:
    """``count`` workers, each on one to three platforms; about one in six elects a split."""
    workers = []
    prefixes = {"dashline": "DL", "rideway": "RW", "sparkle": "SP"}
    for number in range(1, count + 1):
        chosen = [c for c, p in (("dashline", 0.6), ("rideway", 0.4), ("sparkle", 0.35)) if rng.random() < p]
        if not chosen:
            chosen = [rng.choice(list(prefixes))]
        worker = Worker(number, {c: f"{prefixes[c]}-{100000 + number * 7 + rng.randrange(7)}" for c in chosen})
        if rng.random() < 1 / 6:
            worker.election = rng.choice(ELECTIONS)
        workers.append(worker)
    return workers


def _money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def _hours(minutes: int) -> str:
    """Minutes as decimal hours; callers pass multiples of 3 minutes (0.05 h), always exact."""
    hundredths = minutes * 100 // 60
    assert hundredths * 60 == minutes * 100, "demo hours are multiples of 3 minutes"
    return f"{hundredths // 100}.{hundredths % 100:02d}"


def month_rows(contributor: str, workers: list[Worker], month_start: date, rng: random.Random) -> list[list[str]]:
    """One month of CSV rows for a contributor; some workers sit a month out."""
    month_end = month_start.replace(day=calendar.monthrange(month_start.year, month_start.month)[1])
    rows = []
    for worker in workers:
        ref = worker.refs.get(contributor)
        if ref is None or rng.random() < 0.1:
            continue
        gross, tips, minutes, jobs = _activity(contributor, worker.number, rng)
        rows.append([ref, month_start.isoformat(), month_end.isoformat(), _money(gross), _money(tips),
                     _hours(minutes), str(jobs)])
    return rows


def _activity(contributor: str, number: int, rng: random.Random) -> tuple[int, int, int, int]:
    intensity = (number * 2654435761 % 100) / 100  # a worker's own steady level, 0-0.99
    if contributor == "dashline":
        gross = int(rng.randint(5_000, 70_000) * (0.4 + intensity))
        tips = gross * rng.randint(8, 25) // 100
        return gross, tips, rng.randint(200, 3_000) * 3, 0
    if contributor == "rideway":
        minutes = int(rng.randint(1_000, 3_200) * (0.35 + intensity)) * 3
        return minutes * 40 // 3, 0, minutes, 0
    jobs = int(rng.randint(2, 30) * (0.5 + intensity))
    return jobs * rng.randint(4_500, 9_000), 0, jobs * rng.randint(40, 60) * 3, jobs


def write_quarter(directory: Path, workers: list[Worker], quarter_start: date, seed: int) -> list[tuple[str, Path]]:
    """Write one CSV per contributor and month of the quarter; returns (contributor, path)."""
    rng = random.Random(seed)
    directory.mkdir(parents=True, exist_ok=True)
    files = []
    for offset in range(3):
        month = date(quarter_start.year, quarter_start.month + offset, 1)
        for contributor in ("dashline", "rideway", "sparkle"):
            path = directory / f"{contributor}-{month:%Y-%m}.csv"
            rows = month_rows(contributor, workers, month, rng)
            with path.open("w", encoding="utf-8", newline="") as handle:
                handle.write("worker_id,period_start,period_end,gross_pay,tips,hours,jobs\n")
                handle.writelines(",".join(row) + "\n" for row in rows)
            files.append((contributor, path))
    return files
