"""Remittances: the batches contributors owe, their status, and funding them from suspense.

DOMAIN.md "Funding, pending and available": money received for a remittance lands in its
suspense account, then funds its contributions whole, in order (a batch's line order,
then posting order), stopping at the first it cannot cover; what is left waits for
contributions that join later, and money beyond what is owed is the contributor's credit.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import Table, inspect, select
from sqlalchemy.orm import Session
from sqlmodel import col

from ledger.bulk import update_rows
from ledger.db import Database, insert_ignore
from ledger.errors import NotFoundError
from ledger.ids import new_id
from ledger.money import BUCKETS
from ledger.pagination import Page, paginate
from ledger.postings import Leg, NewTransaction, member_account, merge_legs, payer_receivable, post, suspense
from ledger.principal import Principal
from ledger.tables import Account, Contribution, Funding, Remittance

STATUSES = ("open", "awaiting_funds", "partially_funded", "funded", "overfunded", "overdue")
CONTRIBUTIONS = cast(Table, inspect(Contribution).local_table)
FUNDINGS = cast(Table, inspect(Funding).local_table)


def month_end(day: date) -> date:
    """The last day of ``day``'s month."""
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def due_date_after(closes_on: date, due_day: int) -> date:
    """Day ``due_day`` of the month after ``closes_on`` (API.md: PBL_REMITTANCE_DUE_DAY)."""
    year, month = (closes_on.year + 1, 1) if closes_on.month == 12 else (closes_on.year, closes_on.month + 1)
    return date(year, month, due_day)


def remittance_status(rem: Remittance, today: date) -> str:
    """The status, derived whenever read from amounts and dates (API.md "Remittance").

    ``open`` while a monthly remittance's month is not over; then ``overfunded`` (credit
    above 0), ``funded``, ``overdue`` (past its due date and short), ``partially_funded``
    or ``awaiting_funds``.
    """
    if rem.kind != "batch" and today <= rem.closes_on:
        return "open"
    if rem.amount_funded_minor > rem.amount_due_minor:
        return "overfunded"
    if rem.amount_funded_minor == rem.amount_due_minor:
        return "funded"
    if today > rem.due_date:
        return "overdue"
    return "partially_funded" if rem.amount_funded_minor > 0 else "awaiting_funds"


def new_batch(contributor_id: str, external_id: str, currency: str, request_hash: str,
              line_count: int, today: date, due_day: int, now: datetime) -> Remittance:
    """A batch remittance row, closed when posted (due on ``due_day`` of the next month)."""
    return Remittance(
        id=new_id("rem"), external_id=external_id, contributor_id=contributor_id, currency=currency,
        kind="batch", month=today.strftime("%Y-%m"), request_hash=request_hash, line_count=line_count,
        closes_on=today, due_date=due_date_after(today, due_day), created_at=now,
    )


def monthly_remittance(session: Session, contributor_id: str, currency: str, today: date,
                       due_day: int, now: datetime) -> Remittance:
    """The contributor's open remittance for ``today``'s business month, created and locked."""
    return _open_remittance(session, "monthly", f"monthly:{contributor_id}:{currency}:{today:%Y-%m}",
                            currency, today, due_day, now, contributor_id=contributor_id)


def self_remittance(session: Session, member_id: str, currency: str, today: date, due_day: int,
                    now: datetime) -> Remittance:
    """The member's own remittance for ``today``'s business month, created and locked.

    DOMAIN.md "Funding": "A member's own contributions belong to that member's self
    remittance"; it has no contributor, and like a monthly one it closes at month end.
    """
    return _open_remittance(session, "self", f"self:{member_id}:{currency}:{today:%Y-%m}",
                            currency, today, due_day, now, member_id=member_id)


def _open_remittance(session: Session, kind: str, open_key: str, currency: str, today: date, due_day: int,
                     now: datetime, contributor_id: str | None = None, member_id: str | None = None) -> Remittance:
    closes_on = month_end(today)
    insert_ignore(session, cast(Table, inspect(Remittance).local_table), [{
        "id": new_id("rem"), "contributor_id": contributor_id, "member_id": member_id, "currency": currency,
        "kind": kind, "month": today.strftime("%Y-%m"), "open_key": open_key, "line_count": 0,
        "amount_due_minor": 0, "amount_funded_minor": 0, "reopened_minor": 0, "closes_on": closes_on,
        "due_date": due_date_after(closes_on, due_day), "created_at": now,
    }])
    return lock_remittance(session, open_key=open_key)


def lock_remittance(session: Session, remittance_id: str | None = None, open_key: str | None = None) -> Remittance:
    """Load a remittance ``FOR UPDATE``; NotFoundError when it does not exist."""
    query = select(Remittance).with_for_update().execution_options(populate_existing=True)
    query = query.where(col(Remittance.id) == remittance_id if remittance_id else col(Remittance.open_key) == open_key)
    row = session.scalar(query)
    if row is None:
        raise NotFoundError("remittance not found")
    return row


def suspense_balance(session: Session, rem: Remittance) -> int:
    """Money received for ``rem`` and not yet applied to its contributions."""
    acct = suspense(rem.id, rem.currency)
    value = session.scalar(
        select(col(Account.balance_minor)).where(col(Account.name) == acct.name, col(Account.currency) == acct.currency)
    )
    return int(value or 0)


def funding_transaction(covered: Sequence[Any], effective_at: datetime) -> NewTransaction:
    """Suspense pays contributions' receivable; their pending money becomes available.

    One transaction for all contributions of one remittance funded together, legs on the
    same account summed.
    """
    first = covered[0]
    legs = []
    for c in covered:
        legs.append(Leg(suspense(c.remittance_id, c.currency), c.amount_minor))
        legs.append(Leg(payer_receivable(c.contributor_id, c.member_id, c.currency), -c.amount_minor))
        for bucket in BUCKETS:
            part = getattr(c, f"allocation_{bucket}_minor")
            if part:
                legs.append(Leg(member_account(c.member_id, bucket, "pending", c.currency), part))
                legs.append(Leg(member_account(c.member_id, bucket, "available", c.currency), -part))
    return NewTransaction(
        kind="funding_applied", currency=first.currency, legs=merge_legs(legs), effective_at=effective_at,
        contribution_id=first.id if len(covered) == 1 else None, remittance_id=first.remittance_id,
        contributor_id=first.contributor_id,
    )


def fund_from_suspense(session: Session, rem: Remittance, now: datetime, prefer: str | None = None) -> int:
    """Fund ``rem`` from its suspense; returns the amount used.

    ``rem`` must be locked by the caller. Money first pays what a refund or lost dispute
    reopened (``reopened_minor``), then pending contributions whole, in order, stopping at
    the first it cannot cover (DOMAIN.md "Funding": "money received next pays that
    first"; "whole, in order"). ``prefer`` names a contribution paid for on its own (a
    member's self contribution and its PaymentIntent): it is covered first when it can be.
    """
    money = suspense_balance(session, rem)
    if money <= 0:
        return 0
    transactions = []
    used = 0
    if rem.reopened_minor > 0:
        used = min(money, rem.reopened_minor)
        rem.reopened_minor -= used
        money -= used
        transactions.append(NewTransaction(
            kind="funding_reopened_paid", currency=rem.currency, effective_at=now, remittance_id=rem.id,
            contributor_id=rem.contributor_id,
            legs=[Leg(suspense(rem.id, rem.currency), used),
                  Leg(payer_receivable(rem.contributor_id, rem.member_id or "", rem.currency), -used)],
        ))
    pending = session.execute(
        select(CONTRIBUTIONS).where(CONTRIBUTIONS.c.remittance_id == rem.id, CONTRIBUTIONS.c.status == "pending")
        .order_by(CONTRIBUTIONS.c.seq)
    ).all()
    covered = []
    preferred = [c for c in pending if c.id == prefer and 0 < c.amount_minor <= money]
    if preferred:
        covered.append(preferred[0])
        money -= preferred[0].amount_minor
    for c in pending:
        if c.id == prefer and preferred:
            continue
        if c.amount_minor > money:
            break
        covered.append(c)
        money -= c.amount_minor
    if covered:
        transactions.append(funding_transaction(covered, now))
    if not transactions:
        return 0
    post(session, transactions, now)
    update_rows(session, CONTRIBUTIONS, "id", [{"id": c.id, "status": "available", "available_at": now}
                                               for c in covered])
    used += sum(c.amount_minor for c in covered)
    _charge_fundings_oldest_first(session, rem.id, used)
    return used


def _charge_fundings_oldest_first(session: Session, remittance_id: str, amount: int) -> None:
    """Record on each funding, oldest first, how much of its money made contributions available."""
    rows = session.execute(
        select(FUNDINGS.c.seq, FUNDINGS.c.amount_minor, FUNDINGS.c.applied_minor, FUNDINGS.c.moved_minor,
               FUNDINGS.c.returned_minor)
        .where(FUNDINGS.c.remittance_id == remittance_id, FUNDINGS.c.status == "recorded")
        .order_by(FUNDINGS.c.seq)
    ).all()
    updates = []
    for row in rows:
        if amount == 0:
            break
        room = row.amount_minor - row.applied_minor - row.moved_minor - row.returned_minor
        take = min(room, amount)
        if take > 0:
            updates.append({"seq": row.seq, "applied_minor": row.applied_minor + take})
            amount -= take
    assert amount == 0, "suspense money not backed by fundings"
    update_rows(session, FUNDINGS, "seq", updates)


def get_remittance(db: Database, principal: Principal, remittance_id: str) -> Remittance:
    """One remittance in the caller's scope; else NotFoundError."""
    return db.read(lambda s: load_remittance(s, principal, remittance_id))


def load_remittance(session: Session, principal: Principal, remittance_id: str) -> Remittance:
    """The remittance row in the caller's scope; NotFoundError otherwise."""
    row = session.scalar(select(Remittance).where(col(Remittance.id) == remittance_id))
    if row is None or (row.contributor_id is None and not principal.is_admin):
        raise NotFoundError("remittance not found")
    if row.contributor_id is not None:
        principal.require_contributor(row.contributor_id, "remittance")
    return row


def list_remittances(db: Database, principal: Principal, limit: int, cursor: str | None,
                     status: str | None, today: date) -> Page[Remittance]:
    """Remittances in scope, newest first; ``status`` filters on the derived status."""
    query = select(Remittance)
    if not principal.is_admin:
        query = query.where(col(Remittance.contributor_id) == principal.contributor_id)
    if status is None:
        return db.read(lambda s: paginate(s, query, Remittance.seq, limit, cursor))
    query = query.where(*_status_filter(status, today))
    return db.read(lambda s: paginate(s, query, Remittance.seq, limit, cursor))


def _status_filter(status: str, today: date) -> list[Any]:
    """SQL conditions equivalent to ``remittance_status(row, today) == status``."""
    r = Remittance
    is_open = (r.kind != "batch") & (r.closes_on >= today)
    closed = ~is_open
    if status == "open":
        return [is_open]
    if status == "overfunded":
        return [closed, r.amount_funded_minor > r.amount_due_minor]
    if status == "funded":
        return [closed, r.amount_funded_minor == r.amount_due_minor]
    short = r.amount_funded_minor < r.amount_due_minor
    if status == "overdue":
        return [closed, short, r.due_date < today]
    if status == "partially_funded":
        return [closed, short, r.due_date >= today, r.amount_funded_minor > 0]
    return [closed, short, r.due_date >= today, r.amount_funded_minor == 0]
