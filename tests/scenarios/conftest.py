"""Fixtures for the Stripe scenarios: the API wired to localstripe or to RecordedStripe.

``stripe_app``: the API with a ``StripeGateway`` on the session's localstripe (emptied for
the test) and the webhook secret ``whsec_test``; ``recorded_app``: the same on a
RecordedStripe stub. ``stripe_admin`` / ``recorded_admin``: an administrator's key on each;
``stripe_live_server``: ``stripe_app`` on a real HTTP server, for concurrent deliveries.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from flask import Flask

from api.app import create_app
from ledger.config import Settings
from ledger.db import Database
from ledger.services.keys import create_key
from ledger.stripe_gateway import StripeGateway
from tests.conftest import Caller, Clock
from tests.scenarios.stripe_helpers import WEBHOOK_SECRET
from tests.stripe_support import LOCAL_API_KEY, LocalStripe, RecordedStripe


def stripe_api(database_url: str, database: Database, clock: Clock, api_base: str) -> Flask:
    """The API over the test database, talking to the Stripe-compatible server at ``api_base``."""
    settings = Settings(database_url=database_url, stripe_api_key=LOCAL_API_KEY, stripe_api_base=api_base,
                        stripe_webhook_secret=WEBHOOK_SECRET)
    gateway = StripeGateway(LOCAL_API_KEY, api_base, max_network_retries=0)
    return create_app(settings, database, clock, gateway=gateway)


def admin_on(app: Flask, database: Database, clock: Clock) -> Caller:
    """An administrator's key, used through ``app``."""
    row, secret = create_key(database, "admin", "stripe admin", clock.now)
    return Caller(app.test_client(), secret, row.id)


@pytest.fixture
def stripe_app(database_url: str, database: Database, clock: Clock, stripe_reset: LocalStripe) -> Flask:
    """The API with Stripe on the session's localstripe, emptied for this test."""
    return stripe_api(database_url, database, clock, stripe_reset.url)


@pytest.fixture
def stripe_admin(stripe_app: Flask, database: Database, clock: Clock) -> Caller:
    """An administrator on ``stripe_app``."""
    return admin_on(stripe_app, database, clock)


@pytest.fixture
def recorded_app(database_url: str, database: Database, clock: Clock, recorded_stripe: RecordedStripe) -> Flask:
    """The API with Stripe on a RecordedStripe stub (answers only what the test records)."""
    return stripe_api(database_url, database, clock, recorded_stripe.url)


@pytest.fixture
def recorded_admin(recorded_app: Flask, database: Database, clock: Clock) -> Caller:
    """An administrator on ``recorded_app``."""
    return admin_on(recorded_app, database, clock)


@pytest.fixture
def stripe_live_server(stripe_app: Flask) -> Iterator[str]:
    """``stripe_app`` on a real HTTP server (waitress, 16 threads) on a free loopback port."""
    from waitress.server import create_server

    server = create_server(stripe_app, host="127.0.0.1", port=0, threads=16)
    port = server.socket.getsockname()[1]  # type: ignore[union-attr]
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    server.close()
    thread.join(timeout=5)
