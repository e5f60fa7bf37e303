"""What members and administrators read: balances, entries, the trial balance, verify.

A balance now is the cached balance on the account row; a balance ``as_of`` a moment is
the sum of the account's entries effective up to it. ``verify`` proves the invariants of
DESIGN.md "Double entry" from the rows themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from ledger.db import Database
from ledger.money import BUCKETS
from ledger.pagination import Page, decode_cursor, encode_cursor
from ledger.postings import STATES
from ledger.principal import Principal
from ledger.services.members import load_member
from ledger.tables import Account, Contribution, Entry, Funding, LedgerTransaction, Remittance

Balances = dict[str, dict[str, int]]


def member_balances(db: Database, principal: Principal, member_id: str, currency: str,
                    as_of: datetime | None = None) -> Balances:
    """``{bucket: {state: minor units}}`` for one member and currency, now or ``as_of``.

    ``as_of`` is inclusive: entries effective at that instant count. NotFoundError for
    a member outside the caller's scope.
    """

    def run(session: Session) -> Balances:
        load_member(session, principal, member_id)
        result = {bucket: dict.fromkeys(STATES, 0) for bucket in BUCKETS}
        if as_of is None:
            rows = session.execute(
                select(Account.bucket, Account.state, Account.balance_minor)
                .where(Account.member_id == member_id, Account.currency == currency, Account.kind == "member")
            )
            for bucket, state, balance in rows:
                result[bucket][state] = balance
            return result
        rows = session.execute(
            select(Account.bucket, Account.state, func.coalesce(func.sum(Entry.amount_minor), 0))
            .join(Entry, and_(Entry.account_seq == Account.seq, Entry.effective_at <= as_of), isouter=True)
            .where(Account.member_id == member_id, Account.currency == currency, Account.kind == "member")
            .group_by(Account.bucket, Account.state)
        )
        for bucket, state, total in rows:
            result[bucket][state] = -int(total)  # member accounts are credit-normal
        return result

    return db.read(run)


@dataclass
class MemberEntry:
    """One entry on a member's bucket, in the member's terms (credits positive)."""

    id: str
    transaction_id: str
    effective_at: datetime
    bucket: str
    balance: str
    kind: str
    contributor_id: str | None
    amount_minor: int
    balance_after_minor: int


def member_entries(db: Database, principal: Principal, member_id: str, limit: int, cursor: str | None,
                   bucket: str | None = None, currency: str | None = None) -> Page[MemberEntry]:
    """The member's entries, newest first, keyset-paginated on the entry sequence."""

    def run(session: Session) -> Page[MemberEntry]:
        load_member(session, principal, member_id)
        query = (
            select(Entry, Account.bucket, Account.state)
            .join(Account, Account.seq == Entry.account_seq)
            .where(Account.member_id == member_id, Account.kind == "member")
        )
        if bucket is not None:
            query = query.where(Account.bucket == bucket)
        if currency is not None:
            query = query.where(Account.currency == currency)
        if cursor is not None:
            query = query.where(Entry.seq < decode_cursor(cursor))
        rows = session.execute(query.order_by(Entry.seq.desc()).limit(limit + 1)).all()
        has_more = len(rows) > limit
        rows = rows[:limit]
        data = [to_member_entry(entry, b, s) for entry, b, s in rows]
        return Page(data, has_more, encode_cursor(rows[-1][0].seq) if has_more and rows else None)

    return db.read(run)


def to_member_entry(entry: Entry, bucket: str, state: str) -> MemberEntry:
    """An entry on a credit-normal member account, signed as the member reads it."""
    return MemberEntry(entry.id, entry.transaction_id, entry.effective_at, bucket, state, entry.kind,
                       entry.contributor_id, -entry.amount_minor, entry.balance_after_minor)


def trial_balance(db: Database) -> list[dict[str, Any]]:
    """Per currency: total debits, total credits and their difference (always 0)."""

    def run(session: Session) -> list[dict[str, Any]]:
        rows = session.execute(
            select(
                Account.currency,
                func.coalesce(func.sum(case((Entry.amount_minor > 0, Entry.amount_minor), else_=0)), 0),
                func.coalesce(func.sum(case((Entry.amount_minor < 0, -Entry.amount_minor), else_=0)), 0),
            ).join(Account, Account.seq == Entry.account_seq).group_by(Account.currency).order_by(Account.currency)
        )
        return [{"currency": c, "debits_minor": int(d), "credits_minor": int(k), "difference_minor": int(d) - int(k)}
                for c, d, k in rows]

    return db.read(run)


@dataclass
class Check:
    """One invariant: its name, whether it holds, and what was found."""

    name: str
    ok: bool
    detail: str


def verify(db: Database) -> list[Check]:
    """Check the ledger's invariants from its rows (DOMAIN.md "Reconciliation", last point)."""
    return db.read(lambda s: [check(s) for check in CHECKS])


def _transactions_balance(session: Session) -> Check:
    sums = select(Entry.transaction_id).group_by(Entry.transaction_id).having(
        (func.sum(Entry.amount_minor) != 0) | (func.count() < 2)).subquery()
    bad = session.scalar(select(func.count()).select_from(sums)) or 0
    empty = session.scalar(select(func.count()).select_from(LedgerTransaction).where(
        ~select(Entry.seq).where(Entry.transaction_id == LedgerTransaction.id).exists())) or 0
    total = session.scalar(select(func.count()).select_from(LedgerTransaction)) or 0
    return Check("transactions_balance", bad == 0 and empty == 0,
                 f"{total} transactions; {bad} unbalanced, {empty} without entries")


def _balances_match_entries(session: Session) -> Check:
    sums = select(Entry.account_seq, func.sum(Entry.amount_minor).label("total")).group_by(Entry.account_seq).subquery()
    signed = case((Account.normal == "debit", func.coalesce(sums.c.total, 0)), else_=-func.coalesce(sums.c.total, 0))
    bad = session.scalar(select(func.count()).select_from(Account).join(
        sums, sums.c.account_seq == Account.seq, isouter=True).where(Account.balance_minor != signed)) or 0
    total = session.scalar(select(func.count()).select_from(Account)) or 0
    return Check("balances_equal_entries", bad == 0,
                 f"{total} accounts; {bad} cached balances differ from their entries")


def _running_balances(session: Session) -> Check:
    running = func.sum(Entry.amount_minor).over(partition_by=Entry.account_seq, order_by=Entry.seq)
    inner = select(Entry.balance_after_minor, Account.normal, running.label("run")).join(
        Account, Account.seq == Entry.account_seq).subquery()
    expected = case((inner.c.normal == "debit", inner.c.run), else_=-inner.c.run)
    bad = session.scalar(select(func.count()).select_from(inner).where(inner.c.balance_after_minor != expected)) or 0
    return Check("entries_balance_after", bad == 0, f"{bad} entries whose balance_after is not the running sum")


def _books_balance(session: Session) -> Check:
    rows = session.execute(select(Account.currency, func.sum(Entry.amount_minor)).join(
        Account, Account.seq == Entry.account_seq).group_by(Account.currency)).all()
    off = {c: int(t) for c, t in rows if t != 0}
    return Check("debits_equal_credits", not off, f"per currency off by {off}" if off else
                 f"{len(rows)} currencies, debits equal credits")


def _remittances_match(session: Session) -> Check:
    due = select(Contribution.remittance_id, func.sum(Contribution.amount_minor).label("due")).where(
        Contribution.status != "void").group_by(Contribution.remittance_id).subquery()
    funded = select(Funding.remittance_id, func.sum(Funding.amount_minor - Funding.moved_minor).label("funded")).where(
        Funding.status == "recorded").group_by(Funding.remittance_id).subquery()
    bad = session.scalar(
        select(func.count()).select_from(Remittance)
        .join(due, due.c.remittance_id == Remittance.id, isouter=True)
        .join(funded, funded.c.remittance_id == Remittance.id, isouter=True)
        .where((Remittance.amount_due_minor != func.coalesce(due.c.due, 0))
               | (Remittance.amount_funded_minor != func.coalesce(funded.c.funded, 0)))
    ) or 0
    return Check("remittances_equal_contributions_and_fundings", bad == 0,
                 f"{bad} remittances whose due or funded amount differs from their rows")


def _suspense_matches(session: Session) -> Check:
    applied = select(Funding.remittance_id, func.sum(Funding.amount_minor - Funding.moved_minor - Funding.applied_minor)
                     .label("left")).where(Funding.status == "recorded").group_by(Funding.remittance_id).subquery()
    bad = session.scalar(
        select(func.count()).select_from(Account)
        .join(applied, applied.c.remittance_id == Account.remittance_id, isouter=True)
        .where(Account.kind == "suspense", Account.remittance_id.is_not(None),
               Account.balance_minor != func.coalesce(applied.c.left, 0))
    ) or 0
    return Check("suspense_equals_unapplied_fundings", bad == 0,
                 f"{bad} remittances whose suspense differs from their fundings' unapplied money")


CHECKS = (_transactions_balance, _balances_match_entries, _running_balances, _books_balance,
          _remittances_match, _suspense_matches)
