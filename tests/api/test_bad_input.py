"""Bad input to the posting endpoints: refused with the contract's status and type, nothing changed.

API.md "Conventions": a body that is not strict JSON (duplicate key, NaN/Infinity, nesting
over 32 levels, a number over 4,000 digits, not an object, not sent as JSON) is 400
``malformed_json``; over 16 MiB, 413 ``payload_too_large``; a field problem is 422
``validation_error`` with ``errors`` keyed by field (``errors.lines.<index>`` for
remittance lines). After every refusal the ledger verifies and nothing a user can read
has changed. No input gets a 500.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.api.conftest import PLAN_ID, World, assert_error
from tests.factories import report

REPORT = report("new-1", "w-1", PLAN_ID, 50000)
FUNDING = {"amount_minor": 4000, "currency": "USD", "reference": "wire-1", "received_at": "2026-07-14T09:00:00Z"}
REMITTANCE_FIELDS = {"external_id": "batch-1", "currency": "USD"}


def raw_with(body: dict[str, Any], field: str, token: str) -> str:
    """``body`` as JSON text with ``field``'s value replaced by the raw ``token``."""
    marker = "__TOKEN__"
    return json.dumps({**body, field: marker}).replace(f'"{marker}"', token)


def post_raw(world: World, path: str, data: str | bytes, content_type: str = "application/json") -> Any:
    return world.platform.client.post(path, data=data, content_type=content_type,
                                      headers=world.admin.headers() if "/fundings" in path
                                      else world.platform.headers())


def amount_request(world: World, endpoint: str, token: str) -> tuple[str, str]:
    """(path, raw body) with the endpoint's amount field set to ``token``."""
    if endpoint == "contribution":
        return "/v1/contributions", raw_with(REPORT, "gross_earnings_minor", token)
    if endpoint == "remittance":
        line = raw_with(REPORT, "gross_earnings_minor", token)
        good = json.dumps(report("new-2", "w-1", PLAN_ID, 50000))
        return "/v1/remittances", raw_with(REMITTANCE_FIELDS, "lines", f"[{good}, {line}]")
    return f"/v1/remittances/{world.remittance_id}/fundings", raw_with(FUNDING, "amount_minor", token)


def amount_field_errors(endpoint: str, body: dict[str, Any]) -> None:
    """The error names the amount field (on line 1 for a remittance)."""
    if endpoint == "contribution":
        assert set(body["errors"]) == {"gross_earnings_minor"}, body
    elif endpoint == "remittance":
        assert set(body["errors"]) == {"lines"}, body
        assert set(body["errors"]["lines"]) == {"1"}, body
        assert set(body["errors"]["lines"]["1"]) == {"gross_earnings_minor"}, body
    else:
        assert set(body["errors"]) == {"amount_minor"}, body


ENDPOINTS = ["contribution", "remittance", "funding"]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity", "9" * 5000, "-" + "1" * 4001])
def test_a_bare_nan_infinity_or_a_number_too_long_to_parse_is_malformed_json(
        world: World, endpoint: str, token: str) -> None:
    before = world.state()
    path, data = amount_request(world, endpoint, token)
    assert_error(post_raw(world, path, data), 400, "malformed_json", set())
    assert world.state() == before


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("token", [
    "1e999", "12.5", "12.0", "1e2", '"100"', "true", "false", "null", "[100]", '{"value": 100}',
    "9" * 309, "-1", str(10**12 + 1), "1" + "0" * 3999, "-" + "9" * 3999,
])
def test_an_amount_that_is_not_an_integer_in_bounds_is_a_422_on_that_field(
        world: World, endpoint: str, token: str) -> None:
    before = world.state()
    path, data = amount_request(world, endpoint, token)
    amount_field_errors(endpoint, assert_error(post_raw(world, path, data), 422, "validation_error"))
    assert world.state() == before


def test_a_zero_funding_is_refused_where_an_amount_must_be_positive(world: World) -> None:
    before = world.state()
    path, data = amount_request(world, "funding", "0")
    assert_error(post_raw(world, path, data), 422, "validation_error", {"amount_minor"})
    assert world.state() == before


def test_zero_earnings_are_accepted_and_post_nothing(world: World) -> None:
    response = world.platform.post("/v1/contributions", report("zero-1", "w-1", PLAN_ID, 0))
    assert (response.status_code, response.json["amount_minor"], response.json["status"]) == (201, 0, "available")
    assert world.admin.post("/v1/ledger/verify").json["ok"] is True


def test_the_largest_amount_allowed_is_accepted(world: World) -> None:
    response = world.platform.post("/v1/contributions", report("max-1", "w-1", PLAN_ID, 10**12))
    assert (response.status_code, response.json["amount_minor"]) == (201, 4 * 10**10)
    assert world.admin.post("/v1/ledger/verify").json["ok"] is True


@pytest.mark.parametrize(("field", "value"), [
    ("period_start", "20260401"),
    ("period_start", "2026-W14-3"),
    ("period_start", "2026-4-1"),
    ("period_start", "2026-04-31"),
    ("period_start", "2026-04-01T00:00:00Z"),
    ("period_start", " 2026-04-01"),
    ("period_start", "2026-04-01\n"),
    ("period_start", 20260401),
    ("period_end", "2026-07-16"),
    ("period_end", "2026-03-31"),
    ("worker_ref", " w-1"),
    ("worker_ref", "w-1 "),
    ("worker_ref", "w-1\u200b"),
    ("worker_ref", "w-1\n"),
    ("worker_ref", ""),
    ("worker_ref", "w" * 65),
    ("worker_ref", "w-unknown"),
    ("worker_ref", "W-1"),
    ("worker_ref", 1),
    ("worker_ref", None),
    ("external_id", "new 1"),
    ("external_id", "new-1\n"),
    ("external_id", "\ud800"),
    ("plan_id", "no-such-plan"),
    ("currency", "usd"),
    ("currency", "EUR"),
    ("currency", "XXX1"),
    ("tips_minor", 50001),
    ("engaged_minutes", 10**7 + 1),
    ("jobs", 10**6 + 1),
    ("jobs", -1),
])
def test_a_field_that_breaks_a_rule_is_a_422_keyed_by_that_field(world: World, field: str, value: Any) -> None:
    before = world.state()
    response = world.platform.post("/v1/contributions", {**REPORT, field: value})
    assert_error(response, 422, "validation_error", {field})
    assert world.state() == before


def test_period_end_before_period_start_is_a_422_on_period_end(world: World) -> None:
    before = world.state()
    response = world.platform.post("/v1/contributions",
                                   {**REPORT, "period_start": "2026-04-10", "period_end": "2026-04-09"})
    assert_error(response, 422, "validation_error", {"period_end"})
    assert world.state() == before


def test_a_period_ending_in_the_future_is_a_422_on_period_end(world: World) -> None:
    before = world.state()
    response = world.platform.post("/v1/contributions",
                                   {**REPORT, "period_start": "2026-07-01", "period_end": "2026-07-16"})
    assert_error(response, 422, "validation_error", {"period_end"})
    assert world.state() == before


@pytest.mark.parametrize("missing", ["external_id", "worker_ref", "plan_id", "period_start", "period_end",
                                     "currency", "gross_earnings_minor"])
def test_a_missing_required_field_is_a_422_on_that_field(world: World, missing: str) -> None:
    before = world.state()
    body = {k: v for k, v in REPORT.items() if k != missing}
    assert_error(world.platform.post("/v1/contributions", body), 422, "validation_error", {missing})
    assert world.state() == before


def test_unknown_fields_are_a_422_naming_each_of_them(world: World) -> None:
    before = world.state()
    response = world.platform.post("/v1/contributions", {**REPORT, "bonus_minor": 1, "Worker_ref": "w-1"})
    assert_error(response, 422, "validation_error", {"bonus_minor", "Worker_ref"})
    assert world.state() == before


def test_an_empty_body_is_a_422_listing_the_required_fields(world: World) -> None:
    before = world.state()
    response = world.platform.client.post("/v1/contributions", headers=world.platform.headers())
    body = assert_error(response, 422, "validation_error")
    assert set(body["errors"]) == {"external_id", "worker_ref", "plan_id", "period_start", "period_end",
                                   "currency", "gross_earnings_minor"}
    assert world.state() == before


def _nested_objects(levels: int) -> str:
    return '{"a": ' * levels + "1" + "}" * levels


@pytest.mark.parametrize("data", [
    pytest.param(json.dumps(REPORT)[:-1] + ', "external_id": "new-2"}', id="duplicate-key"),
    pytest.param(json.dumps(REPORT)[:-1] + ', "EXTERNAL_ID": "x", "external_id": "new-1"}', id="duplicate-key-later"),
    pytest.param("[" * 100_000, id="100000-brackets"),
    pytest.param("[" * 100_000 + "]" * 100_000, id="100000-brackets-closed"),
    pytest.param(_nested_objects(33), id="33-level-objects"),
    pytest.param('{"lines": ' + "[" * 40 + "]" * 40 + "}", id="deep-array-in-field"),
    pytest.param('{"external_id": ', id="truncated"),
    pytest.param("{'external_id': 'new-1'}", id="single-quotes"),
    pytest.param('{"external_id": "new-1",}', id="trailing-comma"),
    pytest.param('{"external_id": "new-1"} {}', id="two-documents"),
    pytest.param("not json", id="text"),
    pytest.param(json.dumps([REPORT]), id="array"),
    pytest.param("[]", id="empty-array"),
    pytest.param('"text"', id="string"),
    pytest.param("100", id="number"),
    pytest.param("null", id="null"),
    pytest.param(b'{"external_id": "\xff"}', id="invalid-utf8"),
    pytest.param("\ufeff" + json.dumps(REPORT) + "\x00", id="trailing-nul"),
])
def test_a_body_that_is_not_one_strict_json_object_is_malformed_json(world: World, data: str | bytes) -> None:
    before = world.state()
    assert_error(post_raw(world, "/v1/contributions", data), 400, "malformed_json", set())
    assert world.state() == before


def test_objects_nested_32_levels_are_parsed_and_refused_as_an_unknown_field(world: World) -> None:
    before = world.state()
    response = post_raw(world, "/v1/contributions", _nested_objects(32))
    errors = assert_error(response, 422, "validation_error")["errors"]
    assert "a" in errors
    assert world.state() == before


@pytest.mark.parametrize(("data", "content_type"), [
    ("external_id=new-1&worker_ref=w-1", "application/x-www-form-urlencoded"),
    (json.dumps(REPORT), "text/plain"),
    (json.dumps(REPORT), "application/xml"),
    (json.dumps(REPORT), ""),
])
def test_a_body_not_sent_as_json_is_malformed_json(world: World, data: str, content_type: str) -> None:
    before = world.state()
    assert_error(post_raw(world, "/v1/contributions", data, content_type), 400, "malformed_json", set())
    assert world.state() == before


def test_json_with_a_charset_parameter_is_accepted(world: World) -> None:
    response = post_raw(world, "/v1/contributions", json.dumps(REPORT), "application/json; charset=utf-8")
    assert (response.status_code, response.json["external_id"]) == (201, "new-1")


@pytest.mark.parametrize("path", ["/v1/contributions", "/v1/remittances"])
def test_a_body_over_16_mib_is_payload_too_large(world: World, path: str) -> None:
    before = world.state()
    data = '{"external_id": "' + "x" * (17 * 1024 * 1024) + '"}'
    assert_error(post_raw(world, path, data), 413, "payload_too_large", set())
    assert world.state() == before


# -- remittances ----------------------------------------------------------------------------


def test_a_remittance_of_10001_lines_is_a_422_on_lines(world: World) -> None:
    before = world.state()
    lines = [report(f"l-{i}", "w-1", PLAN_ID, 100) for i in range(10_001)]
    response = world.platform.post("/v1/remittances", {**REMITTANCE_FIELDS, "lines": lines})
    assert_error(response, 422, "validation_error", {"lines"})
    assert world.state() == before


def test_a_remittance_with_no_lines_is_a_422_on_lines(world: World) -> None:
    before = world.state()
    response = world.platform.post("/v1/remittances", {**REMITTANCE_FIELDS, "lines": []})
    assert_error(response, 422, "validation_error", {"lines"})
    assert world.state() == before


@pytest.mark.parametrize(("bad_line", "field"), [
    ({"gross_earnings_minor": 12.5}, "gross_earnings_minor"),
    ({"period_start": "2026-4-1"}, "period_start"),
    ({"worker_ref": "w-unknown"}, "worker_ref"),
    ({"plan_id": "no-such-plan"}, "plan_id"),
    ({"currency": "EUR"}, "currency"),
    ({"period_end": "2026-07-16", "period_start": "2026-07-01"}, "period_end"),
    ({"external_id": "line-0"}, "external_id"),
    ({"external_id": "seed-1"}, "external_id"),
    ({"surprise": True}, "surprise"),
])
def test_one_bad_line_refuses_the_whole_remittance_naming_that_line(
        world: World, bad_line: dict[str, Any], field: str) -> None:
    before = world.state()
    lines = [report(f"line-{i}", "w-1", PLAN_ID, 10000 * (i + 1)) for i in range(4)]
    lines[2] = {**lines[2], **bad_line}
    response = world.platform.post("/v1/remittances", {**REMITTANCE_FIELDS, "lines": lines})
    body = assert_error(response, 422, "validation_error", {"lines"})
    assert set(body["errors"]["lines"]) == {"2"}, body
    assert set(body["errors"]["lines"]["2"]) == {field}, body
    assert world.state() == before


def test_bad_lines_are_each_named_by_index(world: World) -> None:
    before = world.state()
    lines = [report(f"line-{i}", "w-1", PLAN_ID, 10000) for i in range(5)]
    lines[1]["worker_ref"] = "w-unknown"
    lines[4]["plan_id"] = "no-such-plan"
    response = world.platform.post("/v1/remittances", {**REMITTANCE_FIELDS, "lines": lines})
    body = assert_error(response, 422, "validation_error", {"lines"})
    assert body["errors"]["lines"] == {"1": {"worker_ref": ["Not enrolled with this contributor."]},
                                       "4": {"plan_id": ["Unknown plan."]}}
    assert world.state() == before


def test_a_remittance_line_that_is_not_an_object_is_a_422_on_that_line(world: World) -> None:
    before = world.state()
    lines: list[Any] = [report("line-0", "w-1", PLAN_ID, 10000), "line-1", None]
    response = world.platform.post("/v1/remittances", {**REMITTANCE_FIELDS, "lines": lines})
    body = assert_error(response, 422, "validation_error", {"lines"})
    assert set(body["errors"]["lines"]) == {"1", "2"}, body
    assert world.state() == before


@pytest.mark.parametrize(("field", "value"), [
    ("external_id", "batch 1"), ("external_id", "batch-1\n"), ("currency", "usd"), ("lines", "x"),
    ("lines", None), ("lines", {"0": REPORT}),
])
def test_a_bad_remittance_field_is_a_422_on_that_field(world: World, field: str, value: Any) -> None:
    before = world.state()
    body = {**REMITTANCE_FIELDS, "lines": [REPORT], field: value}
    assert_error(world.platform.post("/v1/remittances", body), 422, "validation_error", {field})
    assert world.state() == before


@pytest.mark.parametrize("dry_run", ["maybe", "2"])
def test_a_bad_dry_run_flag_is_a_400_on_the_query(world: World, dry_run: str) -> None:
    before = world.state()
    body = {**REMITTANCE_FIELDS, "lines": [REPORT]}
    response = world.platform.post(f"/v1/remittances?dry_run={dry_run}", body)
    assert_error(response, 400, "validation_error", {"dry_run"})
    assert world.state() == before


# -- fundings -------------------------------------------------------------------------------


@pytest.mark.parametrize(("field", "value"), [
    ("received_at", "2026-07-14T09:00:00"),
    ("received_at", "2026-07-14 09:00:00Z"),
    ("received_at", "2026-07-14"),
    ("received_at", "2026-07-14T09:00Z"),
    ("received_at", "2026-07-14T09:00:00+0000"),
    ("received_at", "2026-07-14T25:00:00Z"),
    ("received_at", "2026-07-16T09:00:00Z"),
    ("received_at", 1784019600),
    ("currency", "EUR"),
    ("currency", "usd"),
    ("reference", ""),
    ("reference", "r" * 201),
    ("reference", None),
])
def test_a_bad_funding_field_is_a_422_on_that_field(world: World, field: str, value: Any) -> None:
    before = world.state()
    response = world.admin.post(f"/v1/remittances/{world.remittance_id}/fundings", {**FUNDING, field: value})
    assert_error(response, 422, "validation_error", {field})
    assert world.state() == before


@pytest.mark.parametrize("reference", ["wire\u0000-1", "wire-\ud800"])
def test_a_reference_no_database_can_store_is_refused_not_a_500(world: World, reference: str) -> None:
    before = world.state()
    response = world.admin.post(f"/v1/remittances/{world.remittance_id}/fundings", {**FUNDING, "reference": reference})
    assert_error(response, 422, "validation_error", {"reference"})
    assert world.state() == before


@pytest.mark.parametrize("link_code", ["lnk_\u0000", "lnk_\ud800", " lnk_abc", "lnk_abc\n"])
def test_a_link_code_that_cannot_be_one_is_a_422_on_link_code(world: World, link_code: str) -> None:
    before = world.state()
    response = world.platform.post("/v1/enrollments", {"worker_ref": "w-2", "link_code": link_code})
    assert_error(response, 422, "validation_error", {"link_code"})
    assert world.state() == before


@pytest.mark.parametrize("path", ["/v1/contributions/ctb_%00", "/v1/remittances/%00", "/v1/plans/%00",
                                  "/v1/contributors/%00", "/v1/remittances/rem_%00/contributions"])
def test_a_nul_in_an_id_of_the_path_is_not_found(world: World, path: str) -> None:
    assert_error(world.platform.get(path), 404, "not_found", set())


@pytest.mark.parametrize("path", ["/v1/members/%00", "/v1/members/mem_%00/balances", "/v1/fundings/fnd_%00"])
def test_a_nul_in_an_id_of_the_path_is_not_found_for_admins_too(world: World, path: str) -> None:
    assert_error(world.admin.get(path), 404, "not_found", set())


def test_a_nul_in_a_query_filter_is_a_400_on_that_filter(world: World) -> None:
    response = world.platform.get("/v1/contributions?remittance_id=rem_%00")
    assert_error(response, 400, "validation_error", {"remittance_id"})


def test_free_text_keeps_every_other_unicode_character_exactly(world: World) -> None:
    reference = "Überweisung \u200b #1 \U0001f600"
    response = world.admin.post(f"/v1/remittances/{world.remittance_id}/fundings", {**FUNDING, "reference": reference})
    assert (response.status_code, response.json["reference"]) == (201, reference)


def test_a_funding_with_an_offset_is_stored_in_utc(world: World) -> None:
    response = world.admin.post(f"/v1/remittances/{world.remittance_id}/fundings",
                                {**FUNDING, "received_at": "2026-07-14T05:00:00-04:00"})
    assert (response.status_code, response.json["received_at"]) == (201, "2026-07-14T09:00:00Z")
