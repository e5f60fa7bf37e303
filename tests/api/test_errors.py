"""Every error in the contract's body (API.md "Conventions"):
``{code, status, type, message, errors}`` as JSON, whoever raised it (Werkzeug routing,
webargs, the ledger, the web layer), with its headers (``Allow`` on 405, ``Retry-After`` on
503). An unexpected exception is a 500 ``internal_error`` that tells nothing of its cause.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from ledger.errors import UnavailableError
from ledger.services import catalog
from tests.api.conftest import assert_error
from tests.conftest import Caller
from tests.factories import make_platform


@pytest.mark.parametrize("path", ["/v1/nope", "/v1", "/", "/v2/contributions", "/v1/contributions/",
                                  "/v1/contributors/dash/", "/v1/ledger", "/docs/nope", "/static/x.js",
                                  "/v1/webhooks/nope"])
def test_an_unknown_route_is_not_found_in_the_contracts_body(admin: Caller, path: str) -> None:
    response = admin.get(path)
    body = assert_error(response, 404, "not_found", set())
    assert response.mimetype == "application/json"
    assert body["status"] == "Not Found"


@pytest.mark.parametrize(("method", "path", "allowed"), [
    ("PATCH", "/v1/contributions", {"GET", "HEAD", "OPTIONS", "POST"}),
    ("DELETE", "/v1/contributions", {"GET", "HEAD", "OPTIONS", "POST"}),
    ("PUT", "/v1/contributors", {"GET", "HEAD", "OPTIONS", "POST"}),
    ("POST", "/v1/me", {"GET", "HEAD", "OPTIONS"}),
    ("GET", "/v1/ledger/verify", {"OPTIONS", "POST"}),
    ("GET", "/v1/api-keys/key_x", {"DELETE", "OPTIONS"}),
    ("POST", "/v1/members/mem_x/allocation", {"OPTIONS", "PUT"}),
    ("BREW", "/v1/contributions", {"GET", "HEAD", "OPTIONS", "POST"}),
])
def test_a_method_the_route_does_not_take_is_405_with_allow(admin: Caller, method: str, path: str,
                                                            allowed: set[str]) -> None:
    response = admin.client.open(path, method=method, headers=admin.headers(), json={})
    body = assert_error(response, 405, "method_not_allowed", set())
    assert body["status"] == "Method Not Allowed"
    assert {m.strip() for m in response.headers["Allow"].split(",")} == allowed


def test_a_405_on_a_public_route_needs_no_key(client: FlaskClient) -> None:
    response = client.post("/healthz", json={})
    assert_error(response, 405, "method_not_allowed", set())
    assert {m.strip() for m in response.headers["Allow"].split(",")} == {"GET", "HEAD", "OPTIONS"}


def test_an_unknown_route_without_a_key_is_unauthenticated_first(client: FlaskClient) -> None:
    assert_error(client.get("/v1/nope"), 401, "unauthenticated", set())


def test_a_conflict_from_the_ledger_is_409_naming_the_field(app: Flask, admin: Caller) -> None:
    make_platform(app, admin)
    response = admin.post("/v1/contributors", {"id": "dash", "name": "Again", "kind": "platform", "currency": "USD"})
    assert_error(response, 409, "conflict", {"id"})


def test_a_validation_error_keeps_every_field_message(admin: Caller) -> None:
    response = admin.post("/v1/contributors", {"id": "bad id", "kind": "shop", "currency": "usd", "extra": 1})
    body = assert_error(response, 422, "validation_error", {"id", "name", "kind", "currency", "extra"})
    assert body["errors"]["name"] == ["Missing data for required field."]
    assert body["errors"]["extra"] == ["Unknown field."]
    assert body["message"] == "the request is invalid; see errors"


def test_a_query_error_is_400_keyed_by_the_query_value(admin: Caller) -> None:
    response = admin.get("/v1/remittances?status=lost")
    body = assert_error(response, 400, "validation_error", {"status"})
    assert body["status"] == "Bad Request"


def test_a_busy_database_is_503_with_retry_after(admin: Caller, monkeypatch: pytest.MonkeyPatch) -> None:
    def busy(*args: Any, **kwargs: Any) -> Any:
        raise UnavailableError("the database is busy; try again")

    monkeypatch.setattr(catalog, "list_contributors", busy)
    response = admin.get("/v1/contributors")
    assert_error(response, 503, "unavailable", set())
    assert response.headers["Retry-After"] == "1"


def test_an_unexpected_exception_is_a_500_that_reveals_nothing(admin: Caller, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("password=hunter2 at /srv/secret.py")

    monkeypatch.setattr(catalog, "list_contributors", broken)
    response = admin.get("/v1/contributors")
    body = assert_error(response, 500, "internal_error", set())
    assert body["message"] == "internal error"
    assert b"hunter2" not in response.data and b"secret" not in response.data


@pytest.mark.parametrize("path", ["/v1/members/{m}/link-codes", "/v1/ledger/verify"])
def test_a_body_on_an_endpoint_that_takes_none_must_be_empty(app: Flask, admin: Caller, path: str) -> None:
    member_id = admin.post("/v1/members", {}).json["id"]
    response = admin.post(path.format(m=member_id), {"surprise": 1})
    assert_error(response, 422, "validation_error", {"surprise"})
    assert admin.post(path.format(m=member_id)).status_code in (200, 201)
    assert admin.post(path.format(m=member_id), {}).status_code in (200, 201)
