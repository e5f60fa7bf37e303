"""Per-application state: settings, database, clock and payments gateway, reached from views."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from flask import current_app, g

from api.errors import ApiError
from ledger.config import Settings
from ledger.db import Database
from ledger.payments import PaymentsGateway
from ledger.principal import Principal

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class AppState:
    """What ``create_app`` sets up once: settings, database, and the clock (UTC, aware)."""

    settings: Settings
    db: Database
    clock: Callable[[], datetime]
    gateway: PaymentsGateway | None = None


def state() -> AppState:
    """This app's state."""
    result: AppState = current_app.extensions["pbl"]
    return result


def db() -> Database:
    """This app's database."""
    return state().db


def gateway() -> PaymentsGateway | None:
    """The Stripe gateway, or None when ``PBL_STRIPE_API_KEY`` is not set."""
    return state().gateway


def now() -> datetime:
    """The current instant (aware, UTC), fixed for the request."""
    if "now" not in g:
        g.now = state().clock().astimezone(UTC)
    result: datetime = g.now
    return result


def today() -> date:
    """Today's business date in ``PBL_TIMEZONE``."""
    return now().astimezone(state().settings.timezone).date()


def principal() -> Principal:
    """The authenticated caller (set by ``api.auth``)."""
    result: Principal | None = g.get("principal")
    if result is None:
        raise ApiError(401, "unauthenticated", "a valid API key is required")
    return result


def require_role(*roles: str) -> Principal:
    """The caller, if its role may use this endpoint; else 403 ``forbidden``."""
    caller = principal()
    if caller.role not in roles:
        raise ApiError(403, "forbidden", f"this endpoint is not available to {caller.role} keys")
    return caller


def allowed_roles(view: Any) -> tuple[str, ...] | None:
    """The roles a view was declared for with ``@roles``, through any wrappers; None if undeclared."""
    while view is not None:
        found = getattr(view, "pbl_roles", None)
        if found is not None:
            return tuple(found)
        view = getattr(view, "__wrapped__", None)
    return None


def roles(*allowed: str) -> Callable[[F], F]:
    """Refuse other roles (403) before the request's body or query is even parsed.

    Put it right under ``@blp.route`` so that a key whose role can never use the
    endpoint gets 403 ``forbidden``, not a 422 about a body it may not send at all.
    """

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def checked(*args: Any, **kwargs: Any) -> Any:
            require_role(*allowed)
            return view(*args, **kwargs)

        checked.pbl_roles = allowed  # type: ignore[attr-defined]  # read by the app's before_request
        return checked  # type: ignore[return-value]

    return decorate
