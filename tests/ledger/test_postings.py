"""``ledger.postings.post`` on a real database: double entry, no overdraft, balance after each entry.

The invariant is kept twice (DESIGN.md "Double entry"): ``post`` refuses before writing,
and the database refuses what bypasses it (the deferred balance trigger on PostgreSQL,
immutable entries on both databases).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from ledger.db import Database
from ledger.errors import InvariantError
from ledger.postings import Leg, NewTransaction, cash, member_account, post, receivable, suspense
from ledger.services.reports import verify
from ledger.tables import Account, Entry, LedgerTransaction
from tests.conftest import BACKEND

NOW = datetime(2026, 7, 15, 12, 0, tzinfo=UTC)
HEALTH_PENDING = member_account("mem_a", "healthcare", "pending", "USD")
RETIRE_PENDING = member_account("mem_a", "retirement", "pending", "USD")
HEALTH_AVAILABLE = member_account("mem_a", "healthcare", "available", "USD")
DASH = receivable("dash", "USD")


def contribution(amount_health: int, amount_retire: int, kind: str = "contribution") -> NewTransaction:
    """Receivable debited, two pending buckets credited."""
    return NewTransaction(kind=kind, currency="USD", effective_at=NOW, contributor_id="dash", legs=[
        Leg(DASH, amount_health + amount_retire), Leg(HEALTH_PENDING, -amount_health),
        Leg(RETIRE_PENDING, -amount_retire)])


def counts(database: Database) -> tuple[int, int, int]:
    """(accounts, ledger transactions, entries) rows."""
    def run(session: Session) -> tuple[int, int, int]:
        return tuple(session.scalar(sa.select(sa.func.count()).select_from(table)) or 0  # type: ignore[return-value]
                     for table in (Account, LedgerTransaction, Entry))
    return database.read(run)


def balances(database: Database) -> dict[str, int]:
    """Every account's cached balance, by name."""
    return dict(database.read(lambda s: s.execute(sa.select(Account.name, Account.balance_minor)).all()))


def entries(database: Database) -> list[tuple[str, int, int]]:
    """Every entry as (account name, signed amount, balance after), in posting order."""
    return [tuple(row) for row in database.read(lambda s: s.execute(  # type: ignore[misc]
        sa.select(Account.name, Entry.amount_minor, Entry.balance_after_minor)
        .join(Account, Account.seq == Entry.account_seq).order_by(Entry.seq)).all())]


def post_all(database: Database, *transactions: NewTransaction) -> list[str]:
    """Post ``transactions`` in one database transaction."""
    return database.transaction(lambda s: post(s, list(transactions), NOW))


#: verify's double-entry checks; the others compare the ledger with contributions and
#: fundings, which these tests (raw postings, no contributions) do not create
DOUBLE_ENTRY_CHECKS = {"transactions_balance", "balances_equal_entries", "entries_balance_after",
                       "debits_equal_credits"}


def assert_verified(database: Database) -> None:
    """Every double-entry check of verify holds."""
    checks = [c for c in verify(database) if c.name in DOUBLE_ENTRY_CHECKS]
    assert len(checks) == len(DOUBLE_ENTRY_CHECKS)
    assert all(c.ok for c in checks), [c for c in checks if not c.ok]


def test_an_unbalanced_transaction_raises_invariant_error_and_writes_nothing(database: Database) -> None:
    unbalanced = NewTransaction(kind="contribution", currency="USD", effective_at=NOW,
                                legs=[Leg(DASH, 100), Leg(HEALTH_PENDING, -99)])

    with pytest.raises(InvariantError, match="does not balance: 1"):
        post_all(database, unbalanced)

    assert counts(database) == (0, 0, 0)


def test_a_balanced_transaction_posted_with_an_unbalanced_one_is_not_written_either(database: Database) -> None:
    bad = NewTransaction(kind="contribution", currency="USD", effective_at=NOW,
                         legs=[Leg(DASH, 100), Leg(HEALTH_PENDING, -101)])

    with pytest.raises(InvariantError):
        post_all(database, contribution(50, 50), bad)

    assert counts(database) == (0, 0, 0)


@pytest.mark.parametrize(("legs", "message"), [
    ([Leg(DASH, 100)], "fewer than two legs"),
    ([Leg(DASH, 100), Leg(HEALTH_PENDING, -100), Leg(RETIRE_PENDING, 0)], "zero leg"),
    ([Leg(receivable("dash", "EUR"), 100), Leg(HEALTH_PENDING, -100)], "mixes currencies"),
])
def test_a_transaction_with_one_leg_a_zero_leg_or_two_currencies_is_refused(
        database: Database, legs: list[Leg], message: str) -> None:
    with pytest.raises(InvariantError, match=message):
        post_all(database, NewTransaction(kind="contribution", currency="USD", effective_at=NOW, legs=legs))

    assert counts(database) == (0, 0, 0)


def test_a_member_bucket_cannot_go_below_zero_and_the_whole_posting_rolls_back(database: Database) -> None:
    post_all(database, contribution(500, 300))
    too_much = NewTransaction(kind="funding_applied", currency="USD", effective_at=NOW, legs=[
        Leg(HEALTH_PENDING, 502), Leg(HEALTH_AVAILABLE, -502)])  # 500 + 1 pending, asks for 502

    with pytest.raises(InvariantError, match=r"member:mem_a:healthcare:pending would go below zero"):
        post_all(database, contribution(1, 1), too_much)

    assert counts(database) == (3, 1, 3)
    assert balances(database) == {DASH.name: 800, HEALTH_PENDING.name: 500, RETIRE_PENDING.name: 300}
    assert_verified(database)


def test_a_suspense_account_cannot_go_below_zero(database: Database) -> None:
    overdraw = NewTransaction(kind="funding_applied", currency="USD", effective_at=NOW, legs=[
        Leg(suspense("rem_1", "USD"), 1), Leg(DASH, -1)])

    with pytest.raises(InvariantError, match="suspense:rem_1 would go below zero"):
        post_all(database, overdraw)

    assert counts(database) == (0, 0, 0)


def test_a_receivable_may_go_below_zero_when_a_contributor_pays_ahead(database: Database) -> None:
    post_all(database, NewTransaction(kind="funding_applied", currency="USD", effective_at=NOW, legs=[
        Leg(cash("bank", "USD"), 700), Leg(DASH, -700)]))

    assert balances(database) == {"cash:bank": 700, DASH.name: -700}
    assert_verified(database)


def test_each_entry_stores_its_account_s_balance_after_it_in_the_account_s_normal_direction(
        database: Database) -> None:
    post_all(database, contribution(500, 300))
    post_all(database, contribution(20, 7), NewTransaction(kind="contribution", currency="USD", effective_at=NOW,
                                                            legs=[Leg(DASH, 1), Leg(HEALTH_PENDING, -1)]))
    post_all(database, NewTransaction(kind="funding_applied", currency="USD", effective_at=NOW, legs=[
        Leg(HEALTH_PENDING, 521), Leg(HEALTH_AVAILABLE, -521)]))

    assert entries(database) == [
        (DASH.name, 800, 800), (HEALTH_PENDING.name, -500, 500), (RETIRE_PENDING.name, -300, 300),
        (DASH.name, 27, 827), (HEALTH_PENDING.name, -20, 520), (RETIRE_PENDING.name, -7, 307),
        (DASH.name, 1, 828), (HEALTH_PENDING.name, -1, 521),
        (HEALTH_PENDING.name, 521, 0), (HEALTH_AVAILABLE.name, -521, 521),
    ]
    assert balances(database) == {DASH.name: 828, HEALTH_PENDING.name: 0, RETIRE_PENDING.name: 307,
                                  HEALTH_AVAILABLE.name: 521}
    assert_verified(database)


def test_post_returns_the_transaction_ids_in_order_and_verify_counts_them(database: Database) -> None:
    first, second = contribution(5, 5), contribution(1, 2)

    ids = post_all(database, first, second)

    assert ids == [first.id, second.id]
    checks = {c.name: c for c in verify(database)}
    assert checks["transactions_balance"].detail.startswith("2 transactions; 0 unbalanced")
    assert all(c.ok for name, c in checks.items() if name in DOUBLE_ENTRY_CHECKS)


def _seed_one_transaction(database: Database) -> dict[str, Any]:
    post_all(database, contribution(500, 300))
    row = database.read(lambda s: s.execute(sa.select(Entry.id, Entry.account_seq, Entry.transaction_id)
                                            .order_by(Entry.seq).limit(1)).one())
    return {"entry_id": row.id, "account_seq": row.account_seq, "transaction_id": row.transaction_id}


@pytest.mark.parametrize("statement", [
    "UPDATE entries SET amount_minor = amount_minor + 1 WHERE id = :entry_id",
    "DELETE FROM entries WHERE id = :entry_id",
    "UPDATE ledger_transactions SET memo = 'edited' WHERE id = :transaction_id",
    "DELETE FROM ledger_transactions WHERE id = :transaction_id",
])
def test_entries_and_ledger_transactions_are_immutable_in_the_database(database: Database, statement: str) -> None:
    ids = _seed_one_transaction(database)

    with pytest.raises(sa.exc.DBAPIError, match="immutable"), database.engine.begin() as conn:
        conn.execute(sa.text(statement), ids)

    assert entries(database)[0] == (DASH.name, 800, 800)
    assert counts(database) == (3, 1, 3)
    assert_verified(database)


def _insert_transaction(conn: sa.Connection, txn_id: str, legs: list[tuple[int, int]]) -> None:
    conn.execute(sa.text(
        "INSERT INTO ledger_transactions (id, kind, currency, effective_at, created_at)"
        " VALUES (:id, 'manual', 'USD', :now, :now)"), {"id": txn_id, "now": NOW})
    for index, (account_seq, amount) in enumerate(legs):
        conn.execute(sa.text(
            "INSERT INTO entries (id, transaction_id, account_seq, amount_minor, balance_after_minor, kind,"
            " effective_at, created_at) VALUES (:id, :txn, :acct, :amount, 0, 'manual', :now, :now)"),
            {"id": f"ent_{txn_id}_{index}", "txn": txn_id, "acct": account_seq, "amount": amount, "now": NOW})


@pytest.mark.skipif(BACKEND != "postgresql", reason="the deferred balance trigger exists on PostgreSQL only; "
                    "SQLite has no deferred constraint triggers and relies on postings.post's check")
def test_an_unbalanced_transaction_inserted_with_sql_is_rejected_at_commit_by_the_deferred_trigger(
        database: Database) -> None:
    seq = _seed_one_transaction(database)["account_seq"]
    conn = database.engine.connect()
    try:
        trans = conn.begin()
        _insert_transaction(conn, "txn_sql_unbalanced", [(seq, 100), (seq, -99)])  # accepted until COMMIT
        with pytest.raises(sa.exc.IntegrityError, match="does not balance"):
            trans.commit()
    finally:
        conn.close()

    assert counts(database) == (3, 1, 3)
    assert_verified(database)


@pytest.mark.skipif(BACKEND != "postgresql", reason="the deferred balance trigger exists on PostgreSQL only")
def test_a_single_legged_transaction_inserted_with_sql_is_rejected_at_commit(database: Database) -> None:
    _seed_one_transaction(database)

    with pytest.raises(sa.exc.IntegrityError, match="does not balance"), database.engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO ledger_transactions (id, kind, currency, effective_at, created_at)"
            " VALUES ('txn_sql_empty', 'manual', 'USD', :now, :now)"), {"now": NOW})

    assert counts(database) == (3, 1, 3)


@pytest.mark.skipif(BACKEND != "postgresql", reason="the deferred balance trigger exists on PostgreSQL only")
def test_the_trigger_checks_at_commit_so_legs_inserted_one_by_one_may_balance_only_at_the_end(
        database: Database) -> None:
    seq = _seed_one_transaction(database)["account_seq"]

    with database.engine.begin() as conn:
        _insert_transaction(conn, "txn_sql_balanced", [(seq, 100), (seq, -60), (seq, -40)])

    assert counts(database) == (3, 2, 6)
