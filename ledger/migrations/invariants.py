"""Database triggers behind the double-entry invariant (DESIGN.md "Double entry").

- PostgreSQL: a ``DEFERRABLE INITIALLY DEFERRED`` constraint trigger on
  ``ledger_transactions`` checks, once per ledger transaction at commit, that its entries
  are two or more and sum to zero (a CHECK cannot sum across rows).
- Both databases: entries and ledger transactions are immutable (no UPDATE or DELETE).
- PostgreSQL: a lower fillfactor on the rows updated in place (balances, aggregates).
Autogenerate knows nothing of triggers: they are written here by hand (STACK.md).
"""

from __future__ import annotations

from alembic import op

PG_CREATE = [
    """
    CREATE FUNCTION pbl_check_transaction_balances() RETURNS trigger AS $$
    DECLARE
        total BIGINT;
        legs INTEGER;
    BEGIN
        SELECT COALESCE(SUM(amount_minor), 0), COUNT(*) INTO total, legs
          FROM entries WHERE transaction_id = NEW.id;
        IF total <> 0 OR legs < 2 THEN
            RAISE EXCEPTION 'ledger transaction % does not balance (sum %, % entries)', NEW.id, total, legs
                USING ERRCODE = '23514';
        END IF;
        RETURN NULL;
    END $$ LANGUAGE plpgsql
    """,
    """
    CREATE CONSTRAINT TRIGGER ledger_transaction_balances
        AFTER INSERT ON ledger_transactions
        DEFERRABLE INITIALLY DEFERRED
        FOR EACH ROW EXECUTE FUNCTION pbl_check_transaction_balances()
    """,
    """
    CREATE FUNCTION pbl_forbid_change() RETURNS trigger AS $$
    BEGIN
        RAISE EXCEPTION '% rows are immutable', TG_TABLE_NAME USING ERRCODE = '23514';
    END $$ LANGUAGE plpgsql
    """,
    """
    CREATE TRIGGER entries_immutable BEFORE UPDATE OR DELETE ON entries
        FOR EACH ROW EXECUTE FUNCTION pbl_forbid_change()
    """,
    """
    CREATE TRIGGER ledger_transactions_immutable BEFORE UPDATE OR DELETE ON ledger_transactions
        FOR EACH ROW EXECUTE FUNCTION pbl_forbid_change()
    """,
]

PG_CREATE += [
    # Balance and aggregate rows are updated in place all day: leave room on each page so
    # PostgreSQL can update them without touching their indexes (HOT updates).
    "ALTER TABLE accounts SET (fillfactor = 70)",
    "ALTER TABLE period_aggregates SET (fillfactor = 80)",
]

PG_DROP = [
    "DROP TRIGGER IF EXISTS ledger_transactions_immutable ON ledger_transactions",
    "DROP TRIGGER IF EXISTS entries_immutable ON entries",
    "DROP FUNCTION IF EXISTS pbl_forbid_change()",
    "DROP TRIGGER IF EXISTS ledger_transaction_balances ON ledger_transactions",
    "DROP FUNCTION IF EXISTS pbl_check_transaction_balances()",
]

SQLITE_CREATE = [
    f"""
    CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table}
    BEGIN SELECT RAISE(ABORT, '{table} rows are immutable'); END
    """
    for table in ("entries", "ledger_transactions")
    for action in ("UPDATE", "DELETE")
]

SQLITE_DROP = [
    f"DROP TRIGGER IF EXISTS {table}_no_{action.lower()}"
    for table in ("entries", "ledger_transactions")
    for action in ("UPDATE", "DELETE")
]


def create_invariant_triggers() -> None:
    """Create the triggers for the current dialect."""
    statements = PG_CREATE if op.get_bind().dialect.name == "postgresql" else SQLITE_CREATE
    for statement in statements:
        op.execute(statement)


def drop_invariant_triggers() -> None:
    """Drop what ``create_invariant_triggers`` made."""
    statements = PG_DROP if op.get_bind().dialect.name == "postgresql" else SQLITE_DROP
    for statement in statements:
        op.execute(statement)
