"""Bearer API keys, checked before every request except the public routes (API.md)."""

from __future__ import annotations

from flask import g, request

from api.context import db
from api.errors import ApiError
from ledger.services.keys import authenticate

PUBLIC_PATHS = frozenset({"/healthz", "/openapi.json", "/docs", "/v1/webhooks/stripe"})
PUBLIC_PREFIXES = ("/docs/", "/static/")


def is_public(path: str) -> bool:
    """Routes that need no key: health, the OpenAPI document and docs, Stripe's webhook."""
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


def authenticate_request() -> None:
    """Set ``g.principal`` from ``Authorization: Bearer <key>``; 401 when missing or wrong."""
    if is_public(request.path):
        return
    header = request.headers.get("Authorization", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip() or len(secret) > 200:
        raise ApiError(401, "unauthenticated", "a valid API key is required (Authorization: Bearer <key>)",
                       headers={"WWW-Authenticate": "Bearer"})
    found = authenticate(db(), secret.strip())
    if found is None:
        raise ApiError(401, "unauthenticated", "the API key is unknown or revoked",
                       headers={"WWW-Authenticate": "Bearer"})
    g.principal = found
