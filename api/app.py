"""The Flask application factory (no module-level app or engine)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import flask_smorest
from flask import Flask, Response, current_app, g, request
from werkzeug.exceptions import HTTPException

from api import auth, idempotency
from api.context import AppState, allowed_roles
from api.errors import (
    ApiError,
    handle_api_error,
    handle_http_exception,
    handle_ledger_error,
    handle_malformed,
    handle_unexpected,
)
from api.parsing import MalformedJSON, load_request_body
from api.resources import (
    catalog,
    contributions,
    fundings,
    jobs,
    keys,
    ledger,
    members,
    reconciliations,
    webhooks,
    withdrawals,
)
from ledger.config import Settings
from ledger.db import Database, make_engine
from ledger.errors import LedgerError
from ledger.payments import PaymentsGateway
from ledger.stripe_gateway import gateway_from_settings
from schemas.common import ErrorSchema

MAX_BODY_BYTES = 16 * 1024 * 1024
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class Api(flask_smorest.Api):
    """flask-smorest's Api with the contract's error body for HTTP errors (and in the spec)."""

    ERROR_SCHEMA = ErrorSchema

    def handle_http_exception(self, error: HTTPException) -> Any:
        return handle_http_exception(error)


def create_app(settings: Settings | None = None, database: Database | None = None,
               clock: Callable[[], datetime] | None = None, gateway: PaymentsGateway | None = None) -> Flask:
    """Build the API for ``settings`` (default: from the environment).

    ``database``, ``clock`` and the payments ``gateway`` (default: Stripe when
    ``PBL_STRIPE_API_KEY`` is set, else none) may be handed in by tests; the schema must
    already exist (``pbl db upgrade``).
    """
    settings = settings or Settings.from_env()
    app = Flask("pbl")
    app.config.update(
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
        API_TITLE="Portable Benefits Ledger",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        OPENAPI_SWAGGER_UI_URL="https://cdn.jsdelivr.net/npm/swagger-ui-dist/",
        JSON_SORT_KEYS=False,
    )
    app.extensions["pbl"] = AppState(
        settings=settings,
        db=database or Database(make_engine(settings.database_url)),
        clock=clock or (lambda: datetime.now(UTC)),
        gateway=gateway or gateway_from_settings(settings),
    )
    api = Api(app, spec_kwargs={"components": {"securitySchemes": {
        "bearer": {"type": "http", "scheme": "bearer"}}}, "security": [{"bearer": []}]})
    for module in (keys, catalog, members, contributions, fundings, ledger, webhooks, reconciliations, jobs,
                   withdrawals):
        api.register_blueprint(module.blp)
    _install_hooks(app)
    return app


def _install_hooks(app: Flask) -> None:
    app.register_error_handler(LedgerError, handle_ledger_error)
    app.register_error_handler(ApiError, handle_api_error)
    app.register_error_handler(MalformedJSON, handle_malformed)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(Exception, handle_unexpected)

    @app.before_request
    def _before() -> Response | None:
        auth.authenticate_request()
        if "\x00" in request.path:
            # No resource has a NUL in its id (and PostgreSQL cannot even compare one).
            raise ApiError(404, "not_found", "not found")
        principal = g.get("principal")
        if principal is not None:
            # a role that can never use the endpoint: 403 before its body or headers are read
            declared = allowed_roles(current_app.view_functions.get(request.endpoint or ""))
            if declared is not None and principal.role not in declared:
                raise ApiError(403, "forbidden", f"this endpoint is not available to {principal.role} keys")
        if request.method in BODY_METHODS and not auth.is_public(request.path):
            load_request_body(request)
        if g.get("principal") is not None:
            return idempotency.begin()
        return None

    @app.after_request
    def _after(response: Response) -> Response:
        return idempotency.end(response)
