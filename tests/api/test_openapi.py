"""``/openapi.json`` is generated from the code and agrees with API.md.

It lists every path of API.md that the API serves so far (webhooks, withdrawals,
statements, jobs, crediting rates, reconciliations, payment intents and self
contributions are later work), documents the contract's error body, and matches the
routes Flask actually serves.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

#: (method, path) of API.md served by api/resources today.
CONTRACT = {
    ("get", "/v1/me"),
    ("post", "/v1/api-keys"), ("get", "/v1/api-keys"), ("delete", "/v1/api-keys/{key_id}"),
    ("post", "/v1/contributors"), ("get", "/v1/contributors"), ("get", "/v1/contributors/{contributor_id}"),
    ("post", "/v1/contributors/{contributor_id}/plans"), ("get", "/v1/contributors/{contributor_id}/plans"),
    ("get", "/v1/plans/{plan_id}"),
    ("post", "/v1/members"), ("get", "/v1/members/{member_id}"), ("put", "/v1/members/{member_id}/allocation"),
    ("post", "/v1/members/{member_id}/link-codes"),
    ("post", "/v1/enrollments"), ("get", "/v1/enrollments"),
    ("post", "/v1/contributions"), ("get", "/v1/contributions"), ("get", "/v1/contributions/{contribution_id}"),
    ("post", "/v1/contributions/{contribution_id}/reversal"),
    ("post", "/v1/remittances"), ("get", "/v1/remittances"), ("get", "/v1/remittances/{remittance_id}"),
    ("get", "/v1/remittances/{remittance_id}/contributions"), ("get", "/v1/remittances/{remittance_id}/fundings"),
    ("post", "/v1/remittances/{remittance_id}/fundings"),
    ("get", "/v1/fundings"), ("get", "/v1/fundings/{funding_id}"), ("post", "/v1/fundings/{funding_id}/apply"),
    ("post", "/v1/fundings/{funding_id}/reversal"),
    ("get", "/v1/members/{member_id}/contributions"), ("get", "/v1/members/{member_id}/balances"),
    ("get", "/v1/members/{member_id}/entries"),
    ("get", "/v1/ledger/trial-balance"), ("post", "/v1/ledger/verify"),
    ("get", "/healthz"),
    ("post", "/v1/remittances/{remittance_id}/payment-intents"), ("post", "/v1/members/{member_id}/contributions"),
    ("post", "/v1/webhooks/stripe"),
    ("post", "/v1/reconciliations"), ("get", "/v1/reconciliations"), ("get", "/v1/reconciliations/{reconciliation_id}"),
    ("post", "/v1/crediting-rates"), ("get", "/v1/crediting-rates"), ("post", "/v1/jobs/{name}/runs"),
    ("get", "/v1/jobs/runs"),
    ("post", "/v1/members/{member_id}/withdrawals"), ("get", "/v1/members/{member_id}/withdrawals"),
    ("get", "/v1/withdrawals/{withdrawal_id}"), ("post", "/v1/withdrawals/{withdrawal_id}/complete"),
    ("post", "/v1/withdrawals/{withdrawal_id}/cancel"), ("post", "/v1/withdrawal-limits"),
    ("get", "/v1/withdrawal-limits"), ("get", "/v1/members/{member_id}/statements/{month}"),
    ("get", "/v1/members/{member_id}/tax-summaries/{year}"),
}

#: success statuses API.md names for each operation (others answer 200).
SUCCESS = {
    ("post", "/v1/api-keys"): {"201"}, ("delete", "/v1/api-keys/{key_id}"): {"204"},
    ("post", "/v1/contributors"): {"201"}, ("post", "/v1/contributors/{contributor_id}/plans"): {"201"},
    ("post", "/v1/members"): {"201"}, ("post", "/v1/members/{member_id}/link-codes"): {"201"},
    ("post", "/v1/enrollments"): {"201", "200"}, ("post", "/v1/contributions"): {"201", "200"},
    ("post", "/v1/contributions/{contribution_id}/reversal"): {"201"}, ("post", "/v1/remittances"): {"201", "200"},
    ("post", "/v1/remittances/{remittance_id}/fundings"): {"201"},
    ("post", "/v1/fundings/{funding_id}/reversal"): {"201"},
    ("post", "/v1/remittances/{remittance_id}/payment-intents"): {"201"},
    ("post", "/v1/members/{member_id}/contributions"): {"201", "200"}, ("post", "/v1/reconciliations"): {"201"},
    ("post", "/v1/crediting-rates"): {"201"}, ("post", "/v1/jobs/{name}/runs"): {"201", "200"},
    ("post", "/v1/members/{member_id}/withdrawals"): {"201"}, ("post", "/v1/withdrawal-limits"): {"201"},
}

LISTS = {
    "/v1/api-keys", "/v1/contributors", "/v1/contributors/{contributor_id}/plans", "/v1/enrollments",
    "/v1/contributions", "/v1/remittances", "/v1/remittances/{remittance_id}/contributions",
    "/v1/remittances/{remittance_id}/fundings", "/v1/fundings", "/v1/members/{member_id}/contributions",
    "/v1/members/{member_id}/entries", "/v1/reconciliations", "/v1/crediting-rates", "/v1/jobs/runs",
    "/v1/members/{member_id}/withdrawals", "/v1/withdrawal-limits",
}

METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture
def spec(client: FlaskClient) -> dict[str, Any]:
    response = client.get("/openapi.json")
    assert (response.status_code, response.mimetype) == (200, "application/json")
    parsed: dict[str, Any] = json.loads(response.data)
    return parsed


def operations(spec: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(method, path): op for path, ops in spec["paths"].items() for method, op in ops.items()
            if method in METHODS}


def resolve(spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        _, section, kind, name = node["$ref"].split("/")
        node = spec[section][kind][name]
    return node


def test_the_document_is_openapi_3_with_bearer_security(spec: dict[str, Any]) -> None:
    assert spec["openapi"].startswith("3.")
    assert spec["info"] == {"title": "Portable Benefits Ledger", "version": "v1"}
    assert spec["components"]["securitySchemes"] == {"bearer": {"type": "http", "scheme": "bearer"}}
    assert spec["security"] == [{"bearer": []}]


def test_it_lists_every_path_of_the_contract_served_so_far(spec: dict[str, Any]) -> None:
    assert set(operations(spec)) == CONTRACT


def test_it_lists_exactly_the_routes_flask_serves(app: Flask, spec: dict[str, Any]) -> None:
    served = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint in ("static", "api-docs.openapi_json", "api-docs.openapi_swagger_ui") \
                or rule.rule.startswith("/docs"):
            continue
        path = rule.rule.replace("<string:", "{").replace("<", "{").replace(">", "}")
        served |= {(m.lower(), path) for m in rule.methods or () if m.lower() in METHODS}
    assert served == set(operations(spec))


def test_the_error_body_has_the_contracts_shape(spec: dict[str, Any]) -> None:
    error = spec["components"]["schemas"]["Error"]
    assert set(error["properties"]) == {"code", "status", "type", "message", "errors"}
    assert error["properties"]["code"]["type"] == "integer"
    assert error["properties"]["type"]["type"] == "string"
    assert error["properties"]["errors"]["type"] == "object"
    assert set(error["required"]) == {"code", "status", "type", "message", "errors"}


def test_every_operation_documents_errors_with_that_body(spec: dict[str, Any]) -> None:
    for key, op in operations(spec).items():
        default = resolve(spec, op["responses"]["default"])
        assert default["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}, key
        for status, response in op["responses"].items():
            if status.startswith(("4", "5")):
                body = resolve(spec, response)["content"]["application/json"]["schema"]
                assert body == {"$ref": "#/components/schemas/Error"}, key


def test_every_operation_names_its_success_statuses(spec: dict[str, Any]) -> None:
    for key, op in operations(spec).items():
        success = {s for s in op["responses"] if s.startswith("2")}
        assert success == SUCCESS.get(key, {"200"}), key


def test_request_bodies_refuse_unknown_fields_and_bound_every_integer(spec: dict[str, Any]) -> None:
    def check(schema: dict[str, Any], where: str) -> None:
        schema = resolve(spec, schema)
        if schema.get("type") == "array":
            check(schema["items"], where)
            return
        if "properties" not in schema:
            return
        assert schema.get("additionalProperties") is False, where
        for name, prop in schema["properties"].items():
            prop = resolve(spec, prop)
            if prop.get("type") == "integer":
                assert "minimum" in prop and "maximum" in prop, f"{where}.{name}"
            check(prop, f"{where}.{name}")

    bodies = 0
    for key, op in operations(spec).items():
        if "requestBody" in op:
            bodies += 1
            check(op["requestBody"]["content"]["application/json"]["schema"], str(key))
    assert bodies >= 11


def test_every_list_takes_limit_and_cursor(spec: dict[str, Any]) -> None:
    for path in LISTS:
        params = {p["name"]: p for p in spec["paths"][path]["get"]["parameters"]}
        assert params["limit"]["schema"]["minimum"] == 1, path
        assert params["limit"]["schema"]["maximum"] == 500, path
        assert params["limit"]["schema"]["default"] == 50, path
        assert params["cursor"]["in"] == "query", path
        page = resolve(spec, spec["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"])
        assert set(page["properties"]) == {"data", "has_more", "next_cursor"}, path


def test_health_is_documented_as_needing_no_key(spec: dict[str, Any]) -> None:
    assert spec["paths"]["/healthz"]["get"]["security"] == []


def test_client_ids_are_documented_with_their_pattern(spec: dict[str, Any]) -> None:
    report = spec["components"]["schemas"]["ReportIn"]["properties"]
    for name in ("external_id", "worker_ref", "plan_id"):
        assert report[name]["pattern"] == "^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"
    assert report["gross_earnings_minor"]["maximum"] == 10**12


def test_the_docs_page_is_served(client: FlaskClient) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    assert b"swagger" in response.data.lower()
