"""Accrual: members' available money earns its bucket's crediting rate (DOMAIN.md "Accrual").

For each business date D (in ``PBL_TIMEZONE``) and each member bucket, on the bucket's
available balance at the end of D and the rate in force on D (annual, basis points):
``balance x rate_bps / 3,650,000`` minor units a day (actual/365), kept exactly: the day's
numerator is added to the bucket's carry and the whole minor units it holds move into
``accrued_minor`` (integer division, nothing rounded, nothing dropped). On the last date of
a month ``accrued_minor`` is posted to the bucket from ``interest_expense``, effective the
first instant of the next month; the fraction stays in the carry.

It works in sets (DESIGN.md "Jobs"): per date one INSERT (buckets seen for the first time),
one UPDATE over every bucket, and at month end a ``SELECT ... FOR UPDATE`` and an UPDATE that
claim the amounts to post (dates on which every rate is 0 move in one step). A bucket's
``last_accrued_date`` makes each date count once: the UPDATE only touches buckets accrued
through the day before, so running a date again, or two processes at once, accrues nothing
twice, and the month-end claim posts each amount once.
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import CursorResult, Table, and_, case, func, insert, inspect, literal, select, update
from sqlalchemy.orm import Session
from sqlmodel import col

from ledger.db import Database
from ledger.money import BUCKETS
from ledger.postings import Leg, NewTransaction, interest_expense, member_account, post
from ledger.tables import Account, Accrual, CreditingRate, Entry

#: actual/365 with rates in basis points: a day's interest is balance x rate_bps / 3,650,000
DAY_DENOMINATOR = 3_650_000
ACCRUALS: Table = inspect(Accrual).local_table  # type: ignore[assignment]
ACCOUNTS: Table = inspect(Account).local_table  # type: ignore[assignment]
ENTRIES: Table = inspect(Entry).local_table  # type: ignore[assignment]


def start_of(day: date, tz: ZoneInfo) -> datetime:
    """The first instant of business date ``day``, in UTC (DST-safe: midnight local)."""
    return datetime.combine(day, time(0), tz).astimezone(UTC)


def is_month_end(day: date) -> bool:
    """True on the last date of ``day``'s month."""
    return day.day == calendar.monthrange(day.year, day.month)[1]


def rates_by_bucket(session: Session) -> dict[str, list[tuple[date, int]]]:
    """Each bucket's crediting rates, oldest ``effective_from`` first."""
    found: dict[str, list[tuple[date, int]]] = defaultdict(list)
    for bucket, start, bps in session.execute(select(
            col(CreditingRate.bucket), col(CreditingRate.effective_from), col(CreditingRate.annual_rate_bps))
            .order_by(col(CreditingRate.effective_from))):
        found[bucket].append((start, bps))
    return found


def rate_on(rates: dict[str, list[tuple[date, int]]], bucket: str, day: date) -> int:
    """The bucket's annual rate in basis points in force on ``day`` (0 before any rate)."""
    current = 0
    for start, bps in rates.get(bucket, []):
        if start > day:
            break
        current = bps
    return current


def first_date_due(session: Session, tz: ZoneInfo) -> date | None:
    """The first date not yet accrued: the day after the buckets' last accrued date, or,
    before any accrual, the business date the first money became available."""
    last = session.scalar(select(func.min(col(Accrual.last_accrued_date))))
    if last is not None:
        return last + timedelta(days=1)
    first = session.scalar(select(func.min(ENTRIES.c.effective_at)).select_from(ENTRIES).join(
        ACCOUNTS, ACCOUNTS.c.seq == ENTRIES.c.account_seq).where(
        ACCOUNTS.c.kind == "member", ACCOUNTS.c.state == "available"))
    if first is None:
        return None
    if first.tzinfo is None:
        first = first.replace(tzinfo=UTC)
    return first.astimezone(tz).date()


def accrue_through(db: Database, through: date, tz: ZoneInfo, clock: Callable[[], datetime]) -> dict[str, Any]:
    """Accrue every date from the first not yet accrued through ``through``, in order, each
    in its own database transaction; returns counts for the job run.

    ``through`` must be over (the caller checks: ``jobs.runs.run_job``).
    """
    start = db.read(lambda s: first_date_due(s, tz))
    counts: dict[str, Any] = {"from": None, "dates": 0, "buckets": 0, "postings": 0, "interest_minor": {}}
    if start is None or start > through:
        return counts
    counts["from"] = start.isoformat()
    rates = db.read(rates_by_bucket)
    day = start
    while day <= through:
        until = zero_rate_run_end(rates, day, through)
        touched, posted = db.transaction(
            lambda s, d=day, u=until: accrue_day(s, d, tz, rates, clock(), until=u))  # type: ignore[misc]
        counts["dates"] += (until - day).days + 1
        counts["buckets"] = max(counts["buckets"], touched)
        for currency, amount in posted.items():
            counts["postings"] += 1
            counts["interest_minor"][currency] = counts["interest_minor"].get(currency, 0) + amount
        day = until + timedelta(days=1)
    return counts


def zero_rate_run_end(rates: dict[str, list[tuple[date, int]]], day: date, through: date) -> date:
    """The last date from ``day`` on that can be accrued with ``day`` in one step: while every
    rate is 0 nothing accrues, so those dates only move ``last_accrued_date`` (up to a month
    end, which may still post what the month earned before). Else ``day`` itself."""
    until = day
    while (until < through and not is_month_end(until)
           and not any(rate_on(rates, b, d) for b in BUCKETS for d in (until, until + timedelta(days=1)))):
        until += timedelta(days=1)
    return until


def accrue_day(session: Session, day: date, tz: ZoneInfo, rates: dict[str, list[tuple[date, int]]],
               now: datetime, until: date | None = None) -> tuple[int, dict[str, int]]:
    """Accrue ``day`` for every bucket accrued through the day before; post at month end.

    ``until``: the last of a run of dates on which every rate is 0 (``zero_rate_run_end``),
    all accrued at once. Returns (buckets accrued, {currency: minor units posted}).
    """
    until = until or day
    previous = day - timedelta(days=1)
    boundary = start_of(until + timedelta(days=1), tz)
    # EXCEPT, not NOT EXISTS: with accruals empty (or small) by its statistics, PostgreSQL plans
    # NOT EXISTS as a nested loop rescanning accruals, which this INSERT grows, once per account:
    # quadratic (60,000 new buckets took 23 s). EXCEPT reads accruals once, before inserting.
    new = (select(ACCOUNTS.c.seq).where(ACCOUNTS.c.kind == "member", ACCOUNTS.c.state == "available")
           .except_(select(ACCRUALS.c.account_seq)).subquery())
    session.execute(insert(ACCRUALS).from_select(
        ["account_seq", "member_id", "bucket", "currency", "last_accrued_date", "carry_numerator", "accrued_minor"],
        select(ACCOUNTS.c.seq, ACCOUNTS.c.member_id, ACCOUNTS.c.bucket, ACCOUNTS.c.currency, literal(previous),
               literal(0), literal(0))
        .join(new, new.c.seq == ACCOUNTS.c.seq)))
    bps = {bucket: rate_on(rates, bucket, day) for bucket in BUCKETS}
    due = ACCRUALS.c.last_accrued_date == previous
    if not any(bps.values()):
        touched = _rowcount(session.execute(update(ACCRUALS).where(due).values(last_accrued_date=until)))
    else:
        # CAST to BIGINT: on PostgreSQL sum(BIGINT) is NUMERIC, which would make the numerator
        # NUMERIC and ``//`` an exact division (0.97...) rounded into accrued_minor
        moved = func.sum(ENTRIES.c.amount_minor).cast(ENTRIES.c.amount_minor.type)
        later = (select(ENTRIES.c.account_seq, moved.label("moved"))
                 .where(ENTRIES.c.effective_at >= boundary).group_by(ENTRIES.c.account_seq).subquery())
        # member accounts are credit-normal: entries after the day credited it by -amount
        end_of_day = (select(ACCOUNTS.c.seq.label("account_seq"),
                             (ACCOUNTS.c.balance_minor + func.coalesce(later.c.moved, 0)).label("balance"))
                      .select_from(ACCOUNTS.outerjoin(later, later.c.account_seq == ACCOUNTS.c.seq))
                      .where(ACCOUNTS.c.kind == "member", ACCOUNTS.c.state == "available").subquery())
        rate = case(*((ACCRUALS.c.bucket == bucket, literal(value)) for bucket, value in bps.items()), else_=0)
        numerator = ACCRUALS.c.carry_numerator + end_of_day.c.balance * rate
        touched = _rowcount(session.execute(
            update(ACCRUALS).where(and_(ACCRUALS.c.account_seq == end_of_day.c.account_seq, due))
            .values(accrued_minor=ACCRUALS.c.accrued_minor + numerator // DAY_DENOMINATOR,
                    carry_numerator=numerator % DAY_DENOMINATOR, last_accrued_date=day)
        ))
    posted: dict[str, int] = {}
    if is_month_end(until):
        posted = post_month(session, until, boundary, now)
    return int(touched or 0), posted


def _rowcount(result: Any) -> int:
    return int(cast(CursorResult[Any], result).rowcount or 0)


def post_month(session: Session, day: date, effective_at: datetime, now: datetime) -> dict[str, int]:
    """Claim every bucket's whole units accrued this month and post them, effective the first
    instant of the next month: one transaction per currency, ``interest_expense`` debited.

    The rows are read ``FOR UPDATE`` (on SQLite the whole database is already locked): a
    second process claiming the same month waits, then finds nothing left to post.
    """
    waiting = and_(ACCRUALS.c.accrued_minor > 0, ACCRUALS.c.last_accrued_date == day)
    claimed = session.execute(
        select(ACCRUALS.c.member_id, ACCRUALS.c.bucket, ACCRUALS.c.currency, ACCRUALS.c.accrued_minor)
        .where(waiting).order_by(ACCRUALS.c.account_seq).with_for_update()
    ).all()
    if not claimed:
        return {}
    session.execute(update(ACCRUALS).where(waiting).values(accrued_minor=0))
    legs: dict[str, list[Leg]] = defaultdict(list)
    for member_id, bucket, currency, amount in claimed:
        legs[currency].append(Leg(member_account(member_id, bucket, "available", currency), -amount))
    transactions = []
    for currency, credits in sorted(legs.items()):
        total = -sum(leg.amount_minor for leg in credits)
        transactions.append(NewTransaction(
            kind="interest", currency=currency, effective_at=effective_at, memo=f"interest for {day:%Y-%m}",
            legs=[Leg(interest_expense(currency), total), *credits]))
    post(session, transactions, now)
    return {t.currency: t.legs[0].amount_minor for t in transactions}
