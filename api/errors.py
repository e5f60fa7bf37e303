"""Every error as API.md's body ``{code, status, type, message, errors}``, in one place.

One table maps ledger errors to HTTP; HTTP errors raised by Flask, Werkzeug, webargs and
flask-smorest are rewritten to the same body. No input gets a 500: an unexpected
exception is logged and answered 500 ``internal_error`` without details.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from flask import Response, jsonify, request
from werkzeug.exceptions import HTTPException

from api.parsing import MalformedJSON
from ledger import errors as ledger_errors

log = logging.getLogger(__name__)

#: ledger error class -> (HTTP status, error type); the most specific class first.
LEDGER_ERRORS: tuple[tuple[type[ledger_errors.LedgerError], int, str], ...] = (
    (ledger_errors.SignatureError, 400, "validation_error"),
    (ledger_errors.LimitExceededError, 422, "limit_exceeded"),
    (ledger_errors.ValidationError, 422, "validation_error"),
    (ledger_errors.NotFoundError, 404, "not_found"),
    (ledger_errors.ForbiddenError, 403, "forbidden"),
    (ledger_errors.InsufficientFundsError, 409, "insufficient_funds"),
    (ledger_errors.ConflictError, 409, "conflict"),
    (ledger_errors.UnavailableError, 503, "unavailable"),
)

HTTP_TYPES = {
    400: "validation_error", 401: "unauthenticated", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 409: "conflict", 413: "payload_too_large", 415: "malformed_json",
    422: "validation_error", 429: "rate_limited", 503: "unavailable",
}


class ApiError(Exception):
    """An error raised by the web layer itself (auth, headers, idempotency)."""

    def __init__(self, status: int, type_: str, message: str, errors: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.type, self.message = status, type_, message
        self.errors, self.headers = errors or {}, headers or {}


def error_response(status: int, type_: str, message: str, errors: dict[str, Any] | None = None,
                   headers: dict[str, str] | None = None) -> Response:
    """Build the contract's error body."""
    response = jsonify({"code": status, "status": HTTPStatus(status).phrase, "type": type_,
                        "message": message, "errors": errors or {}})
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    if status == 503:
        response.headers.setdefault("Retry-After", "1")
    return response


def handle_ledger_error(exc: ledger_errors.LedgerError) -> Response:
    """Map a ledger error by the table."""
    for cls, status, type_ in LEDGER_ERRORS:
        if isinstance(exc, cls):
            return error_response(status, type_, exc.message, exc.errors)
    log.error("unmapped ledger error", exc_info=exc)
    return error_response(500, "internal_error", "internal error")


def handle_api_error(exc: ApiError) -> Response:
    """An error of the web layer."""
    return error_response(exc.status, exc.type, exc.message, exc.errors, exc.headers)


def handle_malformed(exc: MalformedJSON) -> Response:
    """A body that is not strict JSON."""
    return error_response(400, "malformed_json", str(exc))


def handle_http_exception(exc: HTTPException) -> Response:
    """Werkzeug/webargs/flask-smorest errors in the contract's shape."""
    status = exc.code or 500
    data = getattr(exc, "data", None) or {}
    errors = _flatten(data.get("errors") or data.get("messages") or {})
    message = data.get("message") or exc.description or HTTPStatus(status).phrase
    type_ = HTTP_TYPES.get(status, "internal_error" if status >= 500 else "validation_error")
    if status == 413:
        message = "the body is larger than 16 MiB"
    if status == 422 and "query" in (data.get("messages") or {}):
        status = 400
    if status in (400, 422) and errors and not data.get("message"):
        message = "the request is invalid; see errors"
    headers = dict(data.get("headers") or {})
    if status == 405:
        allow = exc.get_headers(request.environ)
        headers.update({k: v for k, v in allow if k == "Allow"})
    return error_response(status, type_, str(message), errors, headers)


def _flatten(messages: Any) -> Any:
    """webargs keys errors by location (``{"json": {...}}``); the contract by field."""
    if isinstance(messages, dict) and len(messages) == 1:
        (location, inner), = messages.items()
        if location in ("json", "query", "headers", "view_args", "form"):
            return inner
    return messages


def handle_unexpected(exc: Exception) -> Response:
    """Anything else: logged, answered 500 with no detail."""
    if isinstance(exc, HTTPException):
        return handle_http_exception(exc)
    log.exception("unexpected error", exc_info=exc)
    return error_response(500, "internal_error", "internal error")
