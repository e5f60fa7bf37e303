"""Test fixtures: a real database (SQLite file or PostgreSQL), the app, keys, a live server.

Choose the database with ``PBL_TEST_DATABASE=sqlite`` (default) or ``postgresql``;
``PBL_TEST_POSTGRES_URL`` names the server (default the local one, user ``postgres``).
On PostgreSQL the session creates its own database and drops it at the end.
"""

from __future__ import annotations

import os
import shutil
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import SQLModel

from api.app import create_app
from ledger.config import Settings
from ledger.db import Database, create_database, drop_database, make_engine
from ledger.migrate import upgrade
from ledger.services.keys import create_key
from tests.stripe_support import LocalStripe, RecordedStripe

BACKEND = os.environ.get("PBL_TEST_DATABASE", "sqlite")
POSTGRES_URL = os.environ.get("PBL_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
#: the tests' "now": mid-July 2026, so Q2 2026 is over and Q3 is running.
DEFAULT_NOW = datetime(2026, 7, 15, 12, 0, tzinfo=UTC)


def pytest_report_header() -> str:
    return f"pbl test database: {BACKEND}"


@dataclass
class Clock:
    """A settable clock: tests move ``now``; the app reads it per request."""

    now: datetime = DEFAULT_NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated template database for the session."""
    if BACKEND == "postgresql":
        name = f"pbl_test_{uuid.uuid4().hex[:12]}"
        url = create_database(POSTGRES_URL, name)
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        yield url
        drop_database(POSTGRES_URL, name)
    else:
        assert BACKEND == "sqlite", f"unknown PBL_TEST_DATABASE {BACKEND!r}"
        path = tmp_path_factory.mktemp("template") / "template.db"
        engine = make_engine(f"sqlite:///{path}")
        upgrade(engine)
        engine.dispose()
        yield f"sqlite:///{path}"


@pytest.fixture
def database(database_url: str, tmp_path: Path) -> Iterator[Database]:
    """An empty, migrated database for one test."""
    if BACKEND == "postgresql":
        engine = make_engine(database_url)
        tables = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables if t.name != "alembic_version")
        with engine.begin() as conn:
            conn.exec_driver_sql(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
    else:
        path = tmp_path / "test.db"
        shutil.copy(database_url.removeprefix("sqlite:///"), path)
        engine = make_engine(f"sqlite:///{path}")
    yield Database(engine)
    engine.dispose()


@pytest.fixture
def clock() -> Clock:
    """The app's clock, fixed at DEFAULT_NOW unless a test moves it."""
    return Clock()


@pytest.fixture
def settings(database_url: str) -> Settings:
    """Default settings (UTC, USD, due day 15)."""
    return Settings(database_url=database_url)


@pytest.fixture
def app(settings: Settings, database: Database, clock: Clock) -> Flask:
    """The API over the test database."""
    return create_app(settings, database, clock)


@dataclass
class Caller:
    """A client holding one API key: ``caller.post(path, json)`` returns the response."""

    client: FlaskClient
    key: str
    key_id: str
    extra_headers: dict[str, str] = field(default_factory=dict)

    def headers(self, headers: dict[str, str] | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}", **self.extra_headers, **(headers or {})}

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.client.get(path, headers=self.headers(kwargs.pop("headers", None)), **kwargs)

    def post(self, path: str, json: Any = None, **kwargs: Any) -> Any:
        return self.client.post(path, json=json, headers=self.headers(kwargs.pop("headers", None)), **kwargs)

    def put(self, path: str, json: Any = None, **kwargs: Any) -> Any:
        return self.client.put(path, json=json, headers=self.headers(kwargs.pop("headers", None)), **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self.client.delete(path, headers=self.headers(kwargs.pop("headers", None)), **kwargs)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """Flask's test client (no key)."""
    return app.test_client()


@pytest.fixture
def admin(app: Flask, database: Database, clock: Clock) -> Caller:
    """An administrator's key."""
    row, secret = create_key(database, "admin", "test admin", clock.now)
    return Caller(app.test_client(), secret, row.id)


def new_caller(app: Flask, admin: Caller, role: str, **binding: str) -> Caller:
    """Create a platform or member key through the API."""
    response = admin.post("/v1/api-keys", {"role": role, "name": f"{role} key", **binding})
    assert response.status_code == 201, response.json
    return Caller(app.test_client(), response.json["key"], response.json["id"])


@pytest.fixture
def live_server(app: Flask) -> Iterator[str]:
    """The app on a real HTTP server (waitress, 16 threads) on a free loopback port."""
    from waitress.server import create_server

    server = create_server(app, host="127.0.0.1", port=0, threads=16)
    port = server.socket.getsockname()[1]  # type: ignore[union-attr]
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    server.close()
    thread.join(timeout=5)


@pytest.fixture(scope="session")
def localstripe() -> Iterator[LocalStripe]:
    """One localstripe for the session, on 127.0.0.1 and a free port, persisting nothing."""
    server = LocalStripe()
    yield server
    server.stop()


@pytest.fixture
def stripe_reset(localstripe: LocalStripe) -> Iterator[LocalStripe]:
    """The session's localstripe, emptied (objects, webhooks, pending deliveries) for this test."""
    localstripe.reset()
    yield localstripe


@pytest.fixture
def recorded_stripe() -> Iterator[RecordedStripe]:
    """A Stripe stub answering only what the test records (``.add``)."""
    server = RecordedStripe()
    yield server
    server.stop()
