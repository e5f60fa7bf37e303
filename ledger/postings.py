"""Double entry: the only code that writes entries and account balances.

Accounts (DESIGN.md "Double entry"), each in one currency:
- ``member:{id}:{bucket}:{pending|available|held}``: what the fund owes a member (credit);
- ``contributor:{id}:receivable``: what a contributor owes (debit); ``self:{member}:receivable``
  what a member owes for their own contributions;
- ``cash:stripe``, ``cash:bank``: money held (debit);
- ``suspense:{remittance_id}`` and ``suspense:unmatched``: money received, not yet
  applied (credit);
- ``fees``, ``interest_expense``: the fund's costs (debit).

A transaction's legs are signed, debit positive, and sum to zero. ``post`` checks that,
locks every account it touches in sorted order (``SELECT ... FOR UPDATE``), computes each
entry's balance-after, and writes transactions, entries and balances with bulk statements.
The database checks it again (CHECK constraints; on PostgreSQL a deferred constraint
trigger per ledger transaction, see the migrations).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import cast

from sqlalchemy import Table, inspect, select
from sqlalchemy.orm import Session

from ledger.bulk import in_list, insert_rows, update_rows
from ledger.db import insert_ignore
from ledger.errors import InvariantError, ValidationError
from ledger.ids import new_id
from ledger.tables import Account, Entry, LedgerTransaction

ACCOUNTS = cast(Table, inspect(Account).local_table)
ENTRIES = cast(Table, inspect(Entry).local_table)
TRANSACTIONS = cast(Table, inspect(LedgerTransaction).local_table)
STATES = ("pending", "available", "held")
NON_NEGATIVE_KINDS = frozenset({"member", "suspense"})
#: Balances are BIGINT: refuse (422) a posting that would pass 10^18 rather than overflow.
MAX_BALANCE_MINOR = 10**18
_CHUNK = 2000


@dataclass(frozen=True, slots=True)
class AccountRef:
    """Names one account: ``name`` plus ``currency`` is unique; the rest describes it."""

    name: str
    currency: str
    kind: str
    normal: str
    member_id: str | None = None
    bucket: str | None = None
    state: str | None = None
    contributor_id: str | None = None
    remittance_id: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        """``(name, currency)``: the account's unique key."""
        return (self.name, self.currency)

    def row(self) -> dict[str, object]:
        """The account's columns for an insert (balance 0)."""
        return {
            "name": self.name,
            "currency": self.currency,
            "kind": self.kind,
            "normal": self.normal,
            "member_id": self.member_id,
            "bucket": self.bucket,
            "state": self.state,
            "contributor_id": self.contributor_id,
            "remittance_id": self.remittance_id,
            "balance_minor": 0,
        }


def member_account(member_id: str, bucket: str, state: str, currency: str) -> AccountRef:
    """A member's bucket in one state (pending, available or held): a liability."""
    return AccountRef(
        f"member:{member_id}:{bucket}:{state}", currency, "member", "credit",
        member_id=member_id, bucket=bucket, state=state,
    )


def receivable(contributor_id: str, currency: str) -> AccountRef:
    """What a contributor owes the fund: an asset."""
    return AccountRef(
        f"contributor:{contributor_id}:receivable", currency, "receivable", "debit",
        contributor_id=contributor_id,
    )


def payer_receivable(contributor_id: str | None, member_id: str, currency: str) -> AccountRef:
    """What the payer of a contribution owes: its contributor, or the member for their own money."""
    if contributor_id is not None:
        return receivable(contributor_id, currency)
    return AccountRef(f"self:{member_id}:receivable", currency, "receivable", "debit", member_id=member_id)


def fees(currency: str) -> AccountRef:
    """The payment processor's fees: the fund's cost (DOMAIN.md "Funding": booked to ``fees``)."""
    return AccountRef("fees", currency, "fees", "debit")


def stripe_losses(currency: str) -> AccountRef:
    """Money Stripe took back beyond what the payer had paid (e.g. a dispute on top of a full
    refund): the fund's cost, never a member's money or the payer's debt."""
    return AccountRef("stripe_losses", currency, "expense", "debit")


def interest_expense(currency: str) -> AccountRef:
    """What the fund pays members as interest (DOMAIN.md "Accrual": posted from ``interest_expense``)."""
    return AccountRef("interest_expense", currency, "expense", "debit")


def suspense(remittance_id: str | None, currency: str) -> AccountRef:
    """Money received for a remittance (or matching none) and not yet applied."""
    name = f"suspense:{remittance_id}" if remittance_id else "suspense:unmatched"
    return AccountRef(name, currency, "suspense", "credit", remittance_id=remittance_id)


def cash(where: str, currency: str) -> AccountRef:
    """Money the fund holds: ``where`` is ``bank`` or ``stripe``."""
    assert where in ("bank", "stripe"), f"unknown cash account {where!r}"
    return AccountRef(f"cash:{where}", currency, "cash", "debit")


@dataclass(frozen=True, slots=True)
class Leg:
    """One side of a transaction: ``amount_minor`` signed, debit positive, never 0."""

    account: AccountRef
    amount_minor: int


def merge_legs(legs: Iterable[Leg]) -> list[Leg]:
    """Sum legs that move the same account (first-seen order), dropping those that net to 0.

    A batch posts one transaction whose legs are the sum of its contributions' legs, so
    each account gets one entry per batch, not one per line.
    """
    totals: dict[tuple[str, str], int] = {}
    accounts: dict[tuple[str, str], AccountRef] = {}
    for leg in legs:
        key = leg.account.key
        accounts.setdefault(key, leg.account)
        totals[key] = totals.get(key, 0) + leg.amount_minor
    return [Leg(accounts[key], amount) for key, amount in totals.items() if amount != 0]


@dataclass
class NewTransaction:
    """A transaction to post: legs in one currency summing to zero, and what it is for."""

    kind: str
    currency: str
    legs: list[Leg]
    effective_at: datetime
    contribution_id: str | None = None
    funding_id: str | None = None
    remittance_id: str | None = None
    contributor_id: str | None = None
    memo: str | None = None
    id: str = field(default_factory=lambda: new_id("txn"))

    def check(self) -> None:
        """Raise InvariantError unless the legs balance in one currency (double entry)."""
        if len(self.legs) < 2:
            raise InvariantError(f"transaction {self.kind} has fewer than two legs")
        if any(leg.amount_minor == 0 for leg in self.legs):
            raise InvariantError(f"transaction {self.kind} has a zero leg")
        if any(leg.account.currency != self.currency for leg in self.legs):
            raise InvariantError(f"transaction {self.kind} mixes currencies")
        total = sum(leg.amount_minor for leg in self.legs)
        if total != 0:
            raise InvariantError(f"transaction {self.kind} does not balance: {total}")


@dataclass(slots=True)
class LockedAccount:
    """An account row locked for this database transaction."""

    seq: int
    kind: str
    normal: str
    balance_minor: int


def sign(normal: str) -> int:
    """+1 for debit-normal accounts, -1 for credit-normal: balance = sign x sum(entries)."""
    return 1 if normal == "debit" else -1


def lock_accounts(session: Session, refs: Iterable[AccountRef]) -> dict[tuple[str, str], LockedAccount]:
    """Lock all of ``refs`` in (name, currency) order, creating the missing ones.

    Existing accounts are locked in one sorted pass; accounts seen for the first time are
    inserted (a concurrent twin's insert wins quietly) and locked after. Returns
    ``{(name, currency): LockedAccount}``. On SQLite the whole database is already locked
    by ``BEGIN IMMEDIATE``; ``FOR UPDATE`` is dropped there.
    """
    by_key = {ref.key: ref for ref in refs}
    keys = sorted(by_key)
    locked = _select_accounts(session, keys, lock=True)
    missing = [k for k in keys if k not in locked]
    if missing:
        insert_ignore(session, ACCOUNTS, [by_key[k].row() for k in missing])
        locked.update(_select_accounts(session, missing, lock=True))
    return locked


def _select_accounts(
    session: Session, keys: Sequence[tuple[str, str]], lock: bool
) -> dict[tuple[str, str], LockedAccount]:
    """Accounts by (name, currency), in sorted order, ``FOR UPDATE`` when ``lock``."""
    found: dict[tuple[str, str], LockedAccount] = {}
    for currency in sorted({c for _, c in keys}):
        names = sorted(n for n, c in keys if c == currency)
        for start in range(0, len(names), _CHUNK):
            query = (
                select(ACCOUNTS.c.seq, ACCOUNTS.c.name, ACCOUNTS.c.kind, ACCOUNTS.c.normal, ACCOUNTS.c.balance_minor)
                .where(ACCOUNTS.c.currency == currency, in_list(ACCOUNTS.c.name, names[start : start + _CHUNK]))
                .order_by(ACCOUNTS.c.name)
            )
            if lock:
                query = query.with_for_update()
            for row in session.execute(query).all():
                found[(row.name, currency)] = LockedAccount(row.seq, row.kind, row.normal, row.balance_minor)
    return found


def post(session: Session, transactions: Sequence[NewTransaction], now: datetime) -> list[str]:
    """Write ``transactions`` in order; returns their ids.

    Raises InvariantError (nothing written) when a transaction does not balance, or when
    a member bucket or a suspense account would go below zero.
    """
    if not transactions:
        return []
    for txn in transactions:
        txn.check()
    accounts = lock_accounts(session, (leg.account for txn in transactions for leg in txn.legs))
    txn_rows: list[dict[str, object]] = []
    entry_rows: list[dict[str, object]] = []
    touched: dict[int, LockedAccount] = {}
    for txn in transactions:
        txn_rows.append({
            "id": txn.id, "kind": txn.kind, "currency": txn.currency,
            "contribution_id": txn.contribution_id, "funding_id": txn.funding_id,
            "remittance_id": txn.remittance_id, "memo": txn.memo,
            "effective_at": txn.effective_at, "created_at": now,
        })
        for leg in txn.legs:
            account = accounts[leg.account.key]
            touched[account.seq] = account
            account.balance_minor += sign(account.normal) * leg.amount_minor
            if account.kind in NON_NEGATIVE_KINDS and account.balance_minor < 0:
                raise InvariantError(f"{leg.account.name} would go below zero")
            if abs(account.balance_minor) > MAX_BALANCE_MINOR:
                raise ValidationError(f"{leg.account.name} would pass the largest balance the ledger keeps")
            entry_rows.append({
                "id": new_id("ent"), "transaction_id": txn.id, "account_seq": account.seq,
                "amount_minor": leg.amount_minor, "balance_after_minor": account.balance_minor,
                "kind": txn.kind, "contributor_id": txn.contributor_id,
                "effective_at": txn.effective_at, "created_at": now,
            })
    insert_rows(session, TRANSACTIONS, txn_rows)
    insert_rows(session, ENTRIES, entry_rows)
    update_rows(session, ACCOUNTS, "seq", [{"seq": seq, "balance_minor": acc.balance_minor}
                                           for seq, acc in touched.items()])
    return [txn.id for txn in transactions]
