"""The Alembic migrations build exactly the schema the models describe (STACK.md: keep a
test that autogenerate finds no drift)."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

import ledger.tables  # noqa: F401
from ledger.db import Database


def test_migrated_schema_has_no_drift_from_the_models(database: Database) -> None:
    with database.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, SQLModel.metadata)
    assert differences == []
