"""Crediting rates: each bucket's annual rate in basis points, effective-dated (DOMAIN.md "Accrual").

A rate applies from its ``effective_from`` to the dates not yet accrued: a date already
accrued keeps what it earned (accrual reads rates per date, when it runs).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlmodel import col

from ledger.db import Database
from ledger.errors import ConflictError
from ledger.pagination import Page, paginate
from ledger.tables import CreditingRate


def create_rate(db: Database, bucket: str, annual_rate_bps: int, effective_from: date, now: datetime) -> CreditingRate:
    """Record a rate; ConflictError when the bucket already has one from that date."""

    def run(session: Session) -> CreditingRate:
        clash = session.scalar(select(col(CreditingRate.seq)).where(
            col(CreditingRate.bucket) == bucket, col(CreditingRate.effective_from) == effective_from))
        if clash is not None:
            raise ConflictError("this bucket already has a rate from that date",
                                {"effective_from": ["A rate from this date exists for this bucket."]})
        row = CreditingRate(bucket=bucket, annual_rate_bps=annual_rate_bps, effective_from=effective_from,
                            created_at=now)
        session.add(row)
        session.flush()
        return row

    return db.transaction(run)


def list_rates(db: Database, limit: int, cursor: str | None, bucket: str | None = None) -> Page[CreditingRate]:
    """Rates, newest first."""
    query = select(CreditingRate)
    if bucket is not None:
        query = query.where(col(CreditingRate.bucket) == bucket)
    return db.read(lambda s: paginate(s, query, CreditingRate.seq, limit, cursor))
