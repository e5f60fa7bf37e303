"""Engine, sessions and the retrying transaction boundary, for SQLite and PostgreSQL.

SQLite (STACK.md): WAL, foreign keys on, a 30 s busy timeout, and ``BEGIN IMMEDIATE`` for
every writing transaction so a read-then-write never fails with "database is locked".
PostgreSQL: a serialization failure or deadlock (SQLSTATE 40001, 40P01) retries the whole
transaction; past the retry budget the caller gets ``UnavailableError`` and nothing is
written (DESIGN.md "Concurrency and durability").
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Table, event, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session
from sqlmodel import create_engine

from ledger.errors import NotFoundError, UnavailableError

T = TypeVar("T")

RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})
MAX_ATTEMPTS = 8


def make_engine(url: str) -> Engine:
    """Create an engine for ``url`` (``sqlite:///file.db`` or ``postgresql+psycopg://``)."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        _configure_sqlite(engine)
        return engine
    return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's begin event issue BEGIN itself (pysqlite's own handling is off).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        if conn.get_execution_options().get("pbl_readonly"):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")


def is_retryable(exc: BaseException) -> bool:
    """True for a PostgreSQL serialization failure/deadlock or a busy SQLite database."""
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        sqlstate = getattr(exc.orig, "sqlstate", None)
        if sqlstate in RETRYABLE_SQLSTATES:
            return True
        if isinstance(exc, OperationalError) and "database is locked" in str(exc.orig):
            return True
    return False


@dataclass
class Database:
    """The engine plus the one way services open a transaction.

    ``transaction(fn)`` runs ``fn(session)`` inside ``session.begin()``: commit on
    success, roll back on any exception, retried whole on a retryable database error.
    """

    engine: Engine

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self.engine.dialect.name

    def transaction(self, fn: Callable[[Session], T], readonly: bool = False, snapshot: bool = False) -> T:
        """Run ``fn`` in one database transaction; raises UnavailableError when busy.

        ``snapshot``: on PostgreSQL, REPEATABLE READ, so every statement of ``fn`` sees the
        same committed state (SQLite's transactions always do).
        """
        bind = self.engine.execution_options(pbl_readonly=True) if readonly else self.engine
        if snapshot and self.dialect == "postgresql":
            bind = bind.execution_options(isolation_level="REPEATABLE READ")
        for attempt in range(MAX_ATTEMPTS):
            try:
                with Session(bind, expire_on_commit=False) as session, session.begin():
                    return fn(session)
            except IntegrityError:
                # A concurrent twin inserted the same unique row first: run again, and
                # the function finds that row and takes its idempotent path.
                if attempt >= 2:
                    raise
                continue
            except DBAPIError as exc:
                if not is_retryable(exc):
                    raise
                if attempt == MAX_ATTEMPTS - 1:
                    raise UnavailableError("the database is busy; try again") from exc
                time.sleep(random.uniform(0.005, 0.02) * (2**attempt))
        raise AssertionError("unreachable")

    def read(self, fn: Callable[[Session], T], snapshot: bool = False) -> T:
        """Run a read-only ``fn`` (a plain ``BEGIN`` on SQLite, readers never wait);
        ``snapshot``: all its statements read one consistent state (see ``transaction``)."""
        return self.transaction(fn, readonly=True, snapshot=snapshot)


def create_database(server_url: str, name: str) -> str:
    """Create PostgreSQL database ``name`` on the server of ``server_url``; returns its URL.

    For tests and benchmarks, which each work in a database of their own.
    """
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    return server_url.rsplit("/", 1)[0] + f"/{name}"


def drop_database(server_url: str, name: str) -> None:
    """Drop database ``name`` (made by ``create_database``), closing its connections."""
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


M = TypeVar("M")


def fetch(session: Session, model: type[M], public_id: str, what: str) -> M:
    """The row of ``model`` whose public ``id`` is ``public_id``; NotFoundError("<what> not found")."""
    id_column = getattr(model, "id")  # noqa: B009  (every table with a public id names it ``id``)
    row: M | None = session.execute(select(model).where(id_column == public_id)).scalar_one_or_none()
    if row is None:
        raise NotFoundError(f"{what} not found")
    return row


def insert_ignore(session: Session, table: Table, rows: Iterable[Mapping[str, Any]]) -> None:
    """Insert ``rows`` (all with the same keys) into ``table``, skipping any that hit a
    unique constraint. On PostgreSQL one ``INSERT ... SELECT FROM unnest(...)`` statement."""
    rows = list(rows)
    if not rows:
        return
    if session.get_bind().dialect.name != "postgresql":
        session.execute(sqlite.insert(table).on_conflict_do_nothing(), rows)
        return
    columns = list(rows[0])
    types = [table.c[c].type.compile(dialect=postgresql.dialect()).split("(")[0] for c in columns]
    arrays = ", ".join(f"CAST(:a_{c} AS {t}[])" for c, t in zip(columns, types, strict=True))
    names = ", ".join(f'"{c}"' for c in columns)
    session.execute(
        text(f'INSERT INTO "{table.name}" ({names}) SELECT * FROM unnest({arrays}) ON CONFLICT DO NOTHING'),
        {f"a_{c}": [row[c] for row in rows] for c in columns},
    )
