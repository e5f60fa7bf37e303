"""Closing remittances at month end, and paying employer stipends at period end.

A monthly (or self) remittance collects contributions until its business month is over;
from the next day its status reads ``awaiting_funds`` (or ``funded``, ``partially_funded``,
``overfunded``) with a due date, day ``PBL_REMITTANCE_DUE_DAY`` of the next month, and past
that date, short, ``overdue`` (API.md "Remittance": statuses follow from amounts and dates
whenever read, so closing changes no row). This job reports what closed and fell overdue in
its dates, and pays the stipends of ``flat_per_period`` plans ``paid_by: schedule`` whose
periods ended (``ledger.services.stipends``), each member and period once.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlmodel import col

from ledger.db import Database
from ledger.services import job_runs
from ledger.services.stipends import pay_period, periods_ended
from ledger.tables import Plan, Remittance


def close_through(db: Database, through: date, tz: ZoneInfo, due_day: int,
                  clock: Callable[[], datetime]) -> dict[str, Any]:
    """Pay stipends for periods ended through ``through``; count remittances closed and
    fallen overdue since the last successful run. Returns counts for the job run."""
    after = job_runs.succeeded_through(db, "close_remittances")
    counts: dict[str, Any] = {"stipend_periods": 0, "stipends": 0, "stipend_minor": 0}
    plans = db.read(lambda s: list(s.scalars(select(Plan).where(col(Plan.paid_by) == "schedule")
                                             .order_by(col(Plan.seq)))))
    for plan in plans:
        # periods that ended since the last run; all of them for a plan created since then
        created = plan.created_at.astimezone(tz).date()
        since = after if after is not None and created <= after else None
        for start, end in periods_ended(plan, since, through):
            paid, total = db.transaction(
                lambda s, p=plan.id, a=start, b=end: pay_period(s, p, a, b, tz, due_day, clock()))  # type: ignore[misc]
            if paid:
                counts["stipend_periods"] += 1
                counts["stipends"] += paid
                counts["stipend_minor"] += total

    def tally(session: Any) -> tuple[int, int]:
        closed = select(func.count()).select_from(Remittance).where(
            col(Remittance.kind) != "batch", col(Remittance.closes_on) <= through)
        overdue = select(func.count()).select_from(Remittance).where(
            col(Remittance.due_date) < through, col(Remittance.amount_funded_minor) < col(Remittance.amount_due_minor))
        if after is not None:
            closed = closed.where(col(Remittance.closes_on) > after)
            overdue = overdue.where(col(Remittance.due_date) >= after)
        return int(session.scalar(closed) or 0), int(session.scalar(overdue) or 0)

    counts["remittances_closed"], counts["remittances_overdue"] = db.read(tally)
    return counts
