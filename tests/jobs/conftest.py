"""Fixtures and builders for the job tests (accrual, job runs, stipends, the scheduler).

Money is made available the way the product does it: a platform whose plan pays 100% of
pre-tip earnings, all into healthcare, reports a member's earnings and an administrator
records the bank transfer that funds them (DOMAIN.md "Funding": available once funded,
effective when recorded). Rates and job runs go through the API; the ``accruals`` row
(last accrued date, carry numerator, whole units waiting for month end) is read from the
database, since the API does not show it.
"""

from __future__ import annotations

import calendar
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from sqlalchemy import select

from api.app import create_app
from jobs.runs import JobContext
from ledger.config import Settings
from ledger.db import Database, make_engine
from ledger.services.keys import create_key
from ledger.tables import Accrual
from tests.conftest import Caller, Clock
from tests.scenarios.helpers import contribute, enroll, line, platform

#: actual/365 in basis points: a day's interest numerator is balance x rate_bps, over this
DAY = 3_650_000
LOS_ANGELES = ZoneInfo("America/Los_Angeles")
UTC_ZONE = ZoneInfo("UTC")
ALL_HEALTHCARE = {"healthcare": 10_000, "retirement": 0, "training": 0}
#: a plan paying 100% of pre-tip earnings into healthcare: a report of N funds N into healthcare
FULL_PAY = {"rate_bps": 10_000, "allocation": ALL_HEALTHCARE, "effective_from": "2020-01-01"}


def at(text: str) -> datetime:
    """An aware UTC instant from ``YYYY-MM-DDTHH:MM``."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def zulu(instant: datetime) -> str:
    """An instant as the API writes it: UTC with ``Z``."""
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def first_instant(day: date, tz: ZoneInfo) -> str:
    """The first instant of business date ``day`` in ``tz``, as the API writes it."""
    return zulu(datetime(day.year, day.month, day.day, tzinfo=tz))


def month_end(day: date) -> date:
    """The last date of ``day``'s month."""
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def payer(app: Flask, admin: Caller, contributor_id: str = "acme") -> Caller:
    """A platform with plan ``<contributor_id>-full`` (100% of earnings into healthcare) and its key."""
    return platform(app, admin, contributor_id, **{f"{contributor_id}-full": FULL_PAY})


def make_available(admin: Caller, caller: Caller, clock: Clock, worker_ref: str, amount_minor: int,
                   tz: ZoneInfo = UTC_ZONE, plan_id: str = "acme-full", currency: str = "USD",
                   received_at: datetime | None = None) -> str:
    """Enroll ``worker_ref`` and make ``amount_minor`` available now, split by ``plan_id``'s
    allocation (all healthcare by default): a report in the clock's business month under a
    plan paying 100% of earnings, funded in full at ``clock.now`` (the transfer ``received_at``,
    default now). Returns the member id."""
    member_id = enroll(caller, worker_ref)
    today = clock.now.astimezone(tz).date()
    body = line(f"{worker_ref}:{today}", worker_ref, plan_id, amount_minor,
                period_start=today.replace(day=1).isoformat(), period_end=today.isoformat(), currency=currency)
    made = contribute(caller, body)
    assert made["amount_minor"] == amount_minor
    record_funds(admin, made["remittance_id"], amount_minor, clock, f"wire-{worker_ref}-{today}", currency,
                 received_at)
    return member_id


def record_funds(admin: Caller, remittance_id: str, amount_minor: int, clock: Clock, reference: str,
                 currency: str = "USD", received_at: datetime | None = None) -> dict[str, Any]:
    """A bank transfer for a remittance, recorded now (received now unless ``received_at`` says earlier)."""
    response = admin.post(f"/v1/remittances/{remittance_id}/fundings", {
        "amount_minor": amount_minor, "currency": currency, "reference": reference,
        "received_at": zulu(received_at or clock.now)})
    assert response.status_code == 201, response.json
    result: dict[str, Any] = response.json
    return result


def set_rate(admin: Caller, bucket: str, bps: int, effective_from: str) -> dict[str, Any]:
    """POST a crediting rate; asserts 201."""
    response = admin.post("/v1/crediting-rates", {"bucket": bucket, "annual_rate_bps": bps,
                                                  "effective_from": effective_from})
    assert response.status_code == 201, response.json
    result: dict[str, Any] = response.json
    return result


def run(admin: Caller, name: str, through: str | None = None, status: int = 201) -> dict[str, Any]:
    """POST /v1/jobs/{name}/runs (``through`` omitted when None); asserts the status."""
    body = {} if through is None else {"through": through}
    response = admin.post(f"/v1/jobs/{name}/runs", body)
    assert response.status_code == status, response.json
    result: dict[str, Any] = response.json
    return result


@dataclass(frozen=True)
class AccrualRow:
    """A bucket's accrual state: last accrued date, carry numerator (over 3,650,000),
    whole minor units accrued this month and not yet posted."""

    last_accrued_date: date
    carry_numerator: int
    accrued_minor: int

    @property
    def numerator(self) -> int:
        """Everything accrued and not yet posted, as a numerator over 3,650,000."""
        return self.accrued_minor * DAY + self.carry_numerator


def accrual_row(database: Database, member_id: str, bucket: str = "healthcare") -> AccrualRow:
    """The ``accruals`` row of a member's bucket (available state, any currency)."""
    row = database.read(lambda s: s.execute(
        select(Accrual.last_accrued_date, Accrual.carry_numerator, Accrual.accrued_minor)
        .where(Accrual.member_id == member_id, Accrual.bucket == bucket)).one())
    return AccrualRow(row[0], row[1], row[2])


def available(admin: Caller, member_id: str, as_of: str | None = None, currency: str = "USD") -> tuple[int, int, int]:
    """A member's available (healthcare, retirement, training) in ``currency``, now or ``as_of``."""
    response = admin.get(f"/v1/members/{member_id}/balances?currency={currency}" + (f"&as_of={as_of}" if as_of else ""))
    assert response.status_code == 200, response.json
    b = response.json["buckets"]
    return (b["healthcare"]["available_minor"], b["retirement"]["available_minor"], b["training"]["available_minor"])


def interest_entries(admin: Caller, member_id: str) -> list[dict[str, Any]]:
    """A member's interest entries, oldest first."""
    response = admin.get(f"/v1/members/{member_id}/entries?limit=500")
    assert response.status_code == 200, response.json
    assert response.json["has_more"] is False
    return [e for e in reversed(response.json["data"]) if e["kind"] == "interest"]


def simulate(principal: int, bps: int, first: date, last: date) -> tuple[list[tuple[date, int]], int, int]:
    """DOMAIN.md "Accrual" by hand for one bucket holding ``principal`` at a constant rate:
    each date adds ``balance x bps`` to the numerator; on a month's last date the whole
    units are posted and join the balance from the next date on. Returns ([(month end,
    posted)], whole units waiting, carry)."""
    balance, numerator, posted = principal, 0, []
    day = first
    while day <= last:
        numerator += balance * bps
        if day == month_end(day):
            whole, numerator = divmod(numerator, DAY)
            posted.append((day, whole))
            balance += whole
        day += timedelta(days=1)
    whole, carry = divmod(numerator, DAY)
    return posted, whole, carry


def together(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run ``calls`` in threads released by one barrier (as processes starting at once);
    their results, or the exceptions they raised, in order."""
    barrier = threading.Barrier(len(calls))

    def go(call: Callable[[], Any]) -> Any:
        barrier.wait(timeout=30)
        try:
            return call()
        except Exception as exc:  # noqa: BLE001 - the caller inspects it
            return exc

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(go, calls))


@pytest.fixture
def ctx(database: Database, clock: Clock) -> JobContext:
    """The jobs' context over the test database: the test clock, UTC, due day 15, no gateway."""
    return JobContext(database, clock, UTC_ZONE)


@pytest.fixture
def second_database(database: Database) -> Iterator[Database]:
    """The test database through a second engine (another pool, as another process would have)."""
    engine = make_engine(database.engine.url.render_as_string(hide_password=False))
    yield Database(engine)
    engine.dispose()


@pytest.fixture
def la_app(database_url: str, database: Database, clock: Clock) -> Flask:
    """The API with ``PBL_TIMEZONE=America/Los_Angeles``."""
    return create_app(Settings(database_url=database_url, timezone=LOS_ANGELES), database, clock)


@pytest.fixture
def la_admin(la_app: Flask, database: Database, clock: Clock) -> Caller:
    """An administrator on ``la_app``."""
    row, secret = create_key(database, "admin", "la admin", clock.now)
    return Caller(la_app.test_client(), secret, row.id)
