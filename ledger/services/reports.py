"""What members and administrators read: balances, entries, the trial balance, verify.

A balance now is the cached balance on the account row; a balance ``as_of`` a moment is
the sum of the account's entries effective up to it. ``verify`` proves the invariants of
DESIGN.md "Double entry" from the rows themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session
from sqlmodel import col

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
                select(col(Account.bucket), col(Account.state), col(Account.balance_minor))
                .where(col(Account.member_id) == member_id, col(Account.currency) == currency,
                       col(Account.kind) == "member")
            )
            for bucket, state, balance in rows:
                result[cast(str, bucket)][cast(str, state)] = balance
            return result
        rows = session.execute(
            select(col(Account.bucket), col(Account.state), func.coalesce(func.sum(col(Entry.amount_minor)), 0))
            .join(Entry, and_(col(Entry.account_seq) == col(Account.seq), col(Entry.effective_at) <= as_of),
                  isouter=True)
            .where(col(Account.member_id) == member_id, col(Account.currency) == currency,
                   col(Account.kind) == "member")
            .group_by(col(Account.bucket), col(Account.state))
        )
        for bucket, state, total in rows:
            result[cast(str, bucket)][cast(str, state)] = -int(total)  # member accounts are credit-normal
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
            select(Entry, col(Account.bucket), col(Account.state))
            .join(Account, col(Account.seq) == col(Entry.account_seq))
            .where(col(Account.member_id) == member_id, col(Account.kind) == "member")
        )
        if bucket is not None:
            query = query.where(col(Account.bucket) == bucket)
        if currency is not None:
            query = query.where(col(Account.currency) == currency)
        if cursor is not None:
            query = query.where(col(Entry.seq) < decode_cursor(cursor))
        rows = session.execute(query.order_by(col(Entry.seq).desc()).limit(limit + 1)).all()
        has_more = len(rows) > limit
        rows = rows[:limit]
        data = [to_member_entry(entry, cast(str, b), cast(str, s)) for entry, b, s in rows]
        return Page(data, has_more, encode_cursor(cast(int, rows[-1][0].seq)) if has_more and rows else None)

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
                col(Account.currency),
                func.coalesce(func.sum(case((col(Entry.amount_minor) > 0, col(Entry.amount_minor)), else_=0)), 0),
                func.coalesce(func.sum(case((col(Entry.amount_minor) < 0, -col(Entry.amount_minor)), else_=0)), 0),
            ).join(Account, col(Account.seq) == col(Entry.account_seq))
            .group_by(col(Account.currency)).order_by(col(Account.currency))
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
    return db.read(lambda s: [check(s) for check in CHECKS], snapshot=True)


def _transactions_balance(session: Session) -> Check:
    sums = select(col(Entry.transaction_id)).group_by(col(Entry.transaction_id)).having(
        (func.sum(col(Entry.amount_minor)) != 0) | (func.count() < 2)).subquery()
    bad = session.scalar(select(func.count()).select_from(sums)) or 0
    empty = session.scalar(select(func.count()).select_from(LedgerTransaction).where(
        ~select(col(Entry.seq)).where(col(Entry.transaction_id) == col(LedgerTransaction.id)).exists())) or 0
    total = session.scalar(select(func.count()).select_from(LedgerTransaction)) or 0
    return Check("transactions_balance", bad == 0 and empty == 0,
                 f"{total} transactions; {bad} unbalanced, {empty} without entries")


def _balances_match_entries(session: Session) -> Check:
    sums = select(col(Entry.account_seq), func.sum(col(Entry.amount_minor)).label("total")).group_by(
        col(Entry.account_seq)).subquery()
    signed = case((col(Account.normal) == "debit", func.coalesce(sums.c.total, 0)),
                  else_=-func.coalesce(sums.c.total, 0))
    bad = session.scalar(select(func.count()).select_from(Account).join(
        sums, sums.c.account_seq == col(Account.seq), isouter=True).where(col(Account.balance_minor) != signed)) or 0
    total = session.scalar(select(func.count()).select_from(Account)) or 0
    return Check("balances_equal_entries", bad == 0,
                 f"{total} accounts; {bad} cached balances differ from their entries")


def _running_balances(session: Session) -> Check:
    running = func.sum(col(Entry.amount_minor)).over(partition_by=col(Entry.account_seq), order_by=col(Entry.seq))
    inner = select(col(Entry.balance_after_minor), col(Account.normal), running.label("run")).join(
        Account, col(Account.seq) == col(Entry.account_seq)).subquery()
    expected = case((inner.c.normal == "debit", inner.c.run), else_=-inner.c.run)
    bad = session.scalar(select(func.count()).select_from(inner).where(inner.c.balance_after_minor != expected)) or 0
    return Check("entries_balance_after", bad == 0, f"{bad} entries whose balance_after is not the running sum")


def _books_balance(session: Session) -> Check:
    rows = session.execute(select(col(Account.currency), func.sum(col(Entry.amount_minor))).join(
        Account, col(Account.seq) == col(Entry.account_seq)).group_by(col(Account.currency))).all()
    off = {c: int(t) for c, t in rows if t != 0}
    return Check("debits_equal_credits", not off, f"per currency off by {off}" if off else
                 f"{len(rows)} currencies, debits equal credits")


def _remittances_match(session: Session) -> Check:
    due = select(col(Contribution.remittance_id), func.sum(col(Contribution.amount_minor)).label("due")).where(
        col(Contribution.status) != "void").group_by(col(Contribution.remittance_id)).subquery()
    funded = select(col(Funding.remittance_id),
                    func.sum(col(Funding.amount_minor) - col(Funding.moved_minor) - col(Funding.returned_minor))
                    .label("funded")).where(
        col(Funding.status) == "recorded").group_by(col(Funding.remittance_id)).subquery()
    bad = session.scalar(
        select(func.count()).select_from(Remittance)
        .join(due, due.c.remittance_id == col(Remittance.id), isouter=True)
        .join(funded, funded.c.remittance_id == col(Remittance.id), isouter=True)
        .where((col(Remittance.amount_due_minor) != func.coalesce(due.c.due, 0))
               | (col(Remittance.amount_funded_minor) != func.coalesce(funded.c.funded, 0)))
    ) or 0
    return Check("remittances_equal_contributions_and_fundings", bad == 0,
                 f"{bad} remittances whose due or funded amount differs from their rows")


def _suspense_matches(session: Session) -> Check:
    left = (col(Funding.amount_minor) - col(Funding.moved_minor) - col(Funding.applied_minor)
            - col(Funding.returned_minor))
    unapplied = select(col(Funding.remittance_id), col(Funding.currency), func.sum(left).label("left")).where(
        col(Funding.status) == "recorded").group_by(col(Funding.remittance_id), col(Funding.currency)).subquery()
    same_remittance = (unapplied.c.remittance_id == col(Account.remittance_id)) | (
        unapplied.c.remittance_id.is_(None) & col(Account.remittance_id).is_(None))
    bad = session.scalar(
        select(func.count()).select_from(Account)
        .join(unapplied, same_remittance & (unapplied.c.currency == col(Account.currency)), isouter=True)
        .where(col(Account.kind) == "suspense", col(Account.balance_minor) != func.coalesce(unapplied.c.left, 0))
    ) or 0
    return Check("suspense_equals_unapplied_fundings", bad == 0,
                 f"{bad} suspense accounts (per remittance, and unmatched) that differ from their fundings' "
                 "unapplied money")


def _funding_stops_only_when_short(session: Session) -> Check:
    """DOMAIN.md: money in suspense funds contributions whole, in order, stopping at the first
    it cannot cover; so a remittance's first pending contribution is larger than its suspense."""
    first_pending = select(col(Contribution.remittance_id), func.min(col(Contribution.seq)).label("seq")).where(
        col(Contribution.status) == "pending").group_by(col(Contribution.remittance_id)).subquery()
    bad = session.scalar(
        select(func.count()).select_from(Account)
        .join(first_pending, first_pending.c.remittance_id == col(Account.remittance_id))
        .join(Contribution, col(Contribution.seq) == first_pending.c.seq)
        .where(col(Account.kind) == "suspense", col(Contribution.amount_minor) <= col(Account.balance_minor))
    ) or 0
    return Check("suspense_never_covers_a_pending_contribution", bad == 0,
                 f"{bad} remittances whose suspense could pay their first pending contribution")


def _receivables_match(session: Session) -> Check:
    """What each payer owes equals its pending contributions plus what refunds and lost
    disputes reopened (DOMAIN.md "Funding": a refund reopens the receivable)."""
    payer = case((col(Contribution.contributor_id).is_(None), "self:" + col(Contribution.member_id) + ":receivable"),
                 else_="contributor:" + col(Contribution.contributor_id) + ":receivable")
    owed = select(payer.label("name"), col(Contribution.currency).label("currency"),
                  col(Contribution.amount_minor).label("amount")).where(col(Contribution.status) == "pending")
    rem_payer = case((col(Remittance.contributor_id).is_(None), "self:" + col(Remittance.member_id) + ":receivable"),
                     else_="contributor:" + col(Remittance.contributor_id) + ":receivable")
    reopened = select(rem_payer.label("name"), col(Remittance.currency).label("currency"),
                      col(Remittance.reopened_minor).label("amount")).where(col(Remittance.reopened_minor) > 0)
    both = owed.union_all(reopened).subquery()
    totals = select(both.c.name, both.c.currency, func.sum(both.c.amount).label("total")).group_by(
        both.c.name, both.c.currency).subquery()
    bad = session.scalar(
        select(func.count()).select_from(Account)
        .join(totals, (totals.c.name == col(Account.name)) & (totals.c.currency == col(Account.currency)),
              isouter=True)
        .where(col(Account.kind) == "receivable", col(Account.balance_minor) != func.coalesce(totals.c.total, 0))
    ) or 0
    return Check("receivables_equal_pending_and_reopened", bad == 0,
                 f"{bad} payers whose receivable differs from their pending contributions and reopened amounts")


CHECKS = (_transactions_balance, _balances_match_entries, _running_balances, _books_balance,
          _remittances_match, _suspense_matches, _funding_stops_only_when_short, _receivables_match)
