"""The ledger's exceptions: one base, each child names when it is raised.

The API maps each class to an HTTP status and error ``type`` in one table
(``api/errors.py``); nothing else in ``ledger`` knows about HTTP.
"""

from __future__ import annotations

from typing import Any


class LedgerError(Exception):
    """Base of every error the ledger raises on purpose.

    ``errors`` is a mapping of field name to a list of messages (or a nested mapping),
    shown to the client as the error body's ``errors``.
    """

    def __init__(self, message: str, errors: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors or {}


class ValidationError(LedgerError):
    """Input that is well formed but breaks a rule (422 ``validation_error``)."""


class UnknownCurrencyError(ValidationError):
    """A currency code that is not in the ISO 4217 table the ledger supports."""


class NotFoundError(LedgerError):
    """A resource that does not exist or is outside the caller's scope (404)."""


class ForbiddenError(LedgerError):
    """An action the caller's role can never perform (403)."""


class ConflictError(LedgerError):
    """A request that clashes with what is already recorded (409 ``conflict``)."""


class InsufficientFundsError(ConflictError):
    """A withdrawal larger than the bucket's available balance (409)."""


class LimitExceededError(ValidationError):
    """A withdrawal over a yearly limit (422 ``limit_exceeded``)."""


class InvariantError(LedgerError):
    """A posting that would break double entry (unbalanced, mixed currency): a bug, never input."""


class UnavailableError(LedgerError):
    """The database stayed busy past the retry budget (503 ``unavailable``); nothing was written."""


class SignatureError(LedgerError):
    """A webhook whose signature is missing, wrong or stale (400)."""
