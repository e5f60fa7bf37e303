"""Keys and scope (API.md "Authentication and roles").

No key, a wrong, revoked or malformed one: 401 ``unauthenticated``. A resource outside
the caller's scope: 404, as if it did not exist. An endpoint the caller's role can never
use: 403 ``forbidden`` (before its input is even looked at). An id in a body outside the
caller's scope: 422 on that field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.api.conftest import assert_error
from tests.conftest import Caller, new_caller
from tests.factories import enroll, make_platform, report


@dataclass
class TwoPlatforms:
    admin: Caller
    a: Caller
    b: Caller
    member_a: Caller
    member_b: Caller
    member_a_id: str
    member_b_id: str
    contribution_a: dict[str, Any]
    contribution_b: dict[str, Any]
    funding_b: dict[str, Any]


@pytest.fixture
def two(app: Flask, admin: Caller) -> TwoPlatforms:
    """Platforms ``dash`` (A) and ``ride`` (B), one worker and one funded-in-part report each."""
    a = make_platform(app, admin, "dash")
    b = make_platform(app, admin, "ride")
    member_a_id, member_b_id = enroll(a, "w-1"), enroll(b, "w-9")
    contribution_a = a.post("/v1/contributions", report("a-1", "w-1", "dash-plan", 100000)).json
    contribution_b = b.post("/v1/contributions", report("b-1", "w-9", "ride-plan", 50000)).json
    funding_b = admin.post(f"/v1/remittances/{contribution_b['remittance_id']}/fundings", {
        "amount_minor": 1000, "currency": "USD", "reference": "wire-b", "received_at": "2026-07-14T09:00:00Z"}).json
    return TwoPlatforms(admin, a, b, new_caller(app, admin, "member", member_id=member_a_id),
                        new_caller(app, admin, "member", member_id=member_b_id), member_a_id, member_b_id,
                        contribution_a, contribution_b, funding_b)


def unauthenticated(response: Any) -> None:
    assert_error(response, 401, "unauthenticated", set())
    assert response.headers["WWW-Authenticate"] == "Bearer"


# -- who may call at all ------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/v1/me"), ("GET", "/v1/contributions"), ("POST", "/v1/contributions"),
    ("POST", "/v1/ledger/verify"), ("GET", "/v1/members/mem_x/balances"), ("DELETE", "/v1/api-keys/key_x"),
    ("GET", "/v1/no-such-route"),
])
def test_a_request_without_a_key_is_unauthenticated(client: FlaskClient, method: str, path: str) -> None:
    unauthenticated(client.open(path, method=method, json={}))


@pytest.mark.parametrize("header", [
    "", "Bearer", "Bearer ", "Bearer    ", "Basic dXNlcjpwYXNz", "Token {key}", "{key}", "Bearer {key}x",
    "Bearer x{key}", "Bearer {key} {key}", "Bearer pbl_admin_wrong", "Bearer " + "a" * 10_000,
    "Bearer {key}\u00e9",
])
def test_a_missing_malformed_or_wrong_bearer_key_is_unauthenticated(client: FlaskClient, admin: Caller,
                                                                     header: str) -> None:
    value = header.format(key=admin.key)
    unauthenticated(client.get("/v1/me", headers={"Authorization": value}))
    unauthenticated(client.post("/v1/contributors", json={"id": "x", "name": "X", "kind": "platform",
                                                          "currency": "USD"}, headers={"Authorization": value}))


def test_the_bearer_scheme_is_case_insensitive(client: FlaskClient, admin: Caller) -> None:
    response = client.get("/v1/me", headers={"Authorization": f"bearer {admin.key}"})
    assert (response.status_code, response.json["role"]) == (200, "admin")


def test_a_revoked_key_answers_401_from_then_on(app: Flask, admin: Caller) -> None:
    make_platform(app, admin)
    platform = new_caller(app, admin, "platform", contributor_id="dash")
    assert platform.get("/v1/me").status_code == 200
    response = admin.delete(f"/v1/api-keys/{platform.key_id}")
    assert (response.status_code, response.data) == (204, b"")
    unauthenticated(platform.get("/v1/me"))
    unauthenticated(platform.get("/v1/contributions"))
    listed = {k["id"]: k for k in admin.get("/v1/api-keys").json["data"]}
    assert listed[platform.key_id]["revoked_at"] == "2026-07-15T12:00:00Z"
    assert "key" not in listed[platform.key_id]
    assert admin.delete(f"/v1/api-keys/{platform.key_id}").status_code == 204


def test_revoking_an_unknown_key_is_not_found(admin: Caller) -> None:
    assert_error(admin.delete("/v1/api-keys/key_nope"), 404, "not_found", set())


def test_an_admin_can_revoke_its_own_key(admin: Caller) -> None:
    assert admin.delete(f"/v1/api-keys/{admin.key_id}").status_code == 204
    unauthenticated(admin.get("/v1/me"))


def test_keys_are_stored_hashed_and_shown_once(app: Flask, admin: Caller) -> None:
    created = admin.post("/v1/api-keys", {"role": "admin", "name": "second"})
    assert created.status_code == 201
    assert created.json["key"].startswith("pbl_admin_")
    listed = admin.get("/v1/api-keys").json["data"]
    assert all("key" not in k and "key_hash" not in k for k in listed)
    assert created.json["key"] not in admin.get("/v1/api-keys").get_data(as_text=True)


@pytest.mark.parametrize(("body", "field"), [
    ({"role": "platform", "name": "p"}, "contributor_id"),
    ({"role": "platform", "name": "p", "contributor_id": "nobody"}, "contributor_id"),
    ({"role": "member", "name": "m"}, "member_id"),
    ({"role": "member", "name": "m", "member_id": "mem_nobody"}, "member_id"),
    ({"role": "admin", "name": "a", "member_id": "mem_nobody"}, "member_id"),
    ({"role": "root", "name": "r"}, "role"),
    ({"role": "admin"}, "name"),
])
def test_a_key_with_a_wrong_binding_is_a_422_on_that_field(admin: Caller, body: dict[str, Any], field: str) -> None:
    assert_error(admin.post("/v1/api-keys", body), 422, "validation_error", {field})


# -- /v1/me and public routes ---------------------------------------------------------------


def test_me_tells_each_role_who_it_is(two: TwoPlatforms) -> None:
    assert two.admin.get("/v1/me").json == {"role": "admin", "key_id": two.admin.key_id,
                                            "contributor_id": None, "member_id": None}
    assert two.a.get("/v1/me").json == {"role": "platform", "key_id": two.a.key_id,
                                        "contributor_id": "dash", "member_id": None}
    assert two.member_a.get("/v1/me").json == {"role": "member", "key_id": two.member_a.key_id,
                                               "contributor_id": None, "member_id": two.member_a_id}


def test_health_openapi_and_docs_need_no_key(client: FlaskClient) -> None:
    health = client.get("/healthz")
    assert (health.status_code, health.json["status"]) == (200, "ok")
    spec = client.get("/openapi.json")
    assert (spec.status_code, spec.json["info"]["title"]) == (200, "Portable Benefits Ledger")
    docs = client.get("/docs")
    assert (docs.status_code, docs.mimetype) == (200, "text/html")


def test_a_key_sent_to_a_public_route_is_ignored_even_when_wrong(client: FlaskClient) -> None:
    assert client.get("/healthz", headers={"Authorization": "Bearer nope"}).status_code == 200


# -- a platform sees only its own -------------------------------------------------------------


@pytest.mark.parametrize("path", [
    "/v1/contributions/{contribution_b}", "/v1/remittances/{remittance_b}", "/v1/plans/ride-plan",
    "/v1/contributors/ride", "/v1/contributors/ride/plans", "/v1/remittances/{remittance_b}/contributions",
    "/v1/remittances/{remittance_b}/fundings",
])
def test_a_platform_cannot_read_another_platforms_resources(two: TwoPlatforms, path: str) -> None:
    url = path.format(contribution_b=two.contribution_b["id"], remittance_b=two.contribution_b["remittance_id"])
    assert two.b.get(url).status_code == 200
    assert_error(two.a.get(url), 404, "not_found", set())


def test_a_platform_gets_the_same_404_for_another_platforms_resource_as_for_none(two: TwoPlatforms) -> None:
    theirs = two.a.get(f"/v1/contributions/{two.contribution_b['id']}").json
    missing = two.a.get("/v1/contributions/ctb_00000000000000000000").json
    assert theirs == missing


def test_a_platform_cannot_reverse_another_platforms_contribution(two: TwoPlatforms) -> None:
    response = two.a.post(f"/v1/contributions/{two.contribution_b['id']}/reversal", {"reason": "not ours"})
    assert_error(response, 404, "not_found", set())
    assert two.b.get(f"/v1/contributions/{two.contribution_b['id']}").json["status"] == "pending"


def test_a_platforms_lists_show_only_its_own(two: TwoPlatforms) -> None:
    assert [c["id"] for c in two.a.get("/v1/contributions").json["data"]] == [two.contribution_a["id"]]
    assert [r["id"] for r in two.a.get("/v1/remittances").json["data"]] == [two.contribution_a["remittance_id"]]
    assert [c["id"] for c in two.a.get("/v1/contributors").json["data"]] == ["dash"]
    assert [(e["contributor_id"], e["worker_ref"]) for e in two.a.get("/v1/enrollments").json["data"]] \
        == [("dash", "w-1")]
    assert two.a.get("/v1/enrollments?worker_ref=w-9").json["data"] == []
    assert two.a.get(f"/v1/contributions?remittance_id={two.contribution_b['remittance_id']}").json["data"] == []
    assert len(two.admin.get("/v1/enrollments").json["data"]) == 2


def test_a_platform_cannot_post_with_another_platforms_plan(two: TwoPlatforms) -> None:
    before = two.admin.get(f"/v1/members/{two.member_a_id}/balances").json
    response = two.a.post("/v1/contributions", report("a-2", "w-1", "ride-plan", 100000))
    assert_error(response, 422, "validation_error", {"plan_id"})
    assert two.a.get("/v1/contributions").json["data"] == [two.contribution_a]
    assert two.admin.get(f"/v1/members/{two.member_a_id}/balances").json == before


def test_a_platform_cannot_report_for_another_platforms_worker(two: TwoPlatforms) -> None:
    response = two.a.post("/v1/contributions", report("a-2", "w-9", "dash-plan", 100000))
    assert_error(response, 422, "validation_error", {"worker_ref"})


def test_the_same_external_id_at_two_platforms_is_two_reports(two: TwoPlatforms) -> None:
    response = two.b.post("/v1/contributions", report("a-1", "w-9", "ride-plan", 100000))
    assert response.status_code == 201
    assert response.json["id"] != two.contribution_a["id"]


# -- a member sees only its own account -------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/members/{m}", "/v1/members/{m}/balances", "/v1/members/{m}/entries",
                                  "/v1/members/{m}/contributions"])
def test_a_member_cannot_read_another_member(two: TwoPlatforms, path: str) -> None:
    assert two.member_a.get(path.format(m=two.member_a_id)).status_code == 200
    assert_error(two.member_a.get(path.format(m=two.member_b_id)), 404, "not_found", set())


def test_a_member_cannot_change_another_members_allocation_or_issue_their_link_code(two: TwoPlatforms) -> None:
    split = {"healthcare": 10000, "retirement": 0, "training": 0}
    assert_error(two.member_a.put(f"/v1/members/{two.member_b_id}/allocation", split), 404, "not_found", set())
    assert_error(two.member_a.post(f"/v1/members/{two.member_b_id}/link-codes"), 404, "not_found", set())
    assert two.admin.get(f"/v1/members/{two.member_b_id}").json["allocation"] is None


def test_a_member_reads_and_changes_its_own_account(two: TwoPlatforms) -> None:
    split = {"healthcare": 10000, "retirement": 0, "training": 0}
    response = two.member_a.put(f"/v1/members/{two.member_a_id}/allocation", split)
    assert (response.status_code, response.json["allocation"]) == (200, split)
    balances = two.member_a.get(f"/v1/members/{two.member_a_id}/balances").json
    assert balances["total"] == {"pending_minor": 4000, "available_minor": 0, "held_minor": 0}


# -- roles that can never use an endpoint: 403 --------------------------------------------------


MEMBER_FORBIDDEN = [
    ("POST", "/v1/contributions", {}), ("GET", "/v1/contributions", None), ("POST", "/v1/remittances", {}),
    ("GET", "/v1/remittances", None), ("POST", "/v1/enrollments", {"worker_ref": "w-5"}),
    ("GET", "/v1/enrollments", None), ("GET", "/v1/contributors", None), ("POST", "/v1/contributors", {}),
    ("GET", "/v1/plans/dash-plan", None), ("POST", "/v1/api-keys", {"role": "admin", "name": "me"}),
    ("GET", "/v1/api-keys", None), ("POST", "/v1/ledger/verify", None), ("GET", "/v1/ledger/trial-balance", None),
    ("GET", "/v1/fundings", None), ("POST", "/v1/members", {}),
]
PLATFORM_FORBIDDEN = [
    ("GET", "/v1/members/{m}/balances", None), ("GET", "/v1/members/{m}/entries", None),
    ("GET", "/v1/members/{m}", None), ("GET", "/v1/members/{m}/contributions", None),
    ("PUT", "/v1/members/{m}/allocation", {"healthcare": 10000, "retirement": 0, "training": 0}),
    ("POST", "/v1/members/{m}/link-codes", None), ("POST", "/v1/contributors", {}),
    ("POST", "/v1/contributors", {"id": "evil", "name": "Evil", "kind": "platform", "currency": "USD"}),
    ("POST", "/v1/contributors/dash/plans", {}), ("POST", "/v1/api-keys", {"role": "admin", "name": "me"}),
    ("GET", "/v1/api-keys", None), ("DELETE", "/v1/api-keys/{key}", None), ("POST", "/v1/members", {}),
    ("POST", "/v1/remittances/{r}/fundings", {}), ("GET", "/v1/fundings", None),
    ("GET", "/v1/fundings/{f}", None), ("POST", "/v1/fundings/{f}/apply", {}),
    ("POST", "/v1/fundings/{f}/reversal", None), ("POST", "/v1/ledger/verify", None),
    ("GET", "/v1/ledger/trial-balance", None), ("GET", "/v1/members/{m}/balances?as_of=nonsense", None),
]


def _call(caller: Caller, method: str, path: str, body: Any) -> Any:
    kwargs = {"json": body} if body is not None else {}
    return caller.client.open(path, method=method, headers=caller.headers(), **kwargs)


@pytest.mark.parametrize(("method", "path", "body"), MEMBER_FORBIDDEN)
def test_a_member_key_is_forbidden_from_what_members_never_do(two: TwoPlatforms, method: str, path: str,
                                                              body: Any) -> None:
    before = two.admin.get("/v1/contributions").json
    assert_error(_call(two.member_a, method, path, body), 403, "forbidden", set())
    assert two.admin.get("/v1/contributions").json == before


@pytest.mark.parametrize(("method", "path", "body"), PLATFORM_FORBIDDEN)
def test_a_platform_key_is_forbidden_from_what_platforms_never_do(two: TwoPlatforms, method: str, path: str,
                                                                  body: Any) -> None:
    url = path.format(m=two.member_a_id, key=two.admin.key_id, r=two.contribution_a["remittance_id"],
                      f=two.funding_b["id"])
    before = (two.admin.get("/v1/contributors").json, two.admin.get("/v1/api-keys").json,
              two.admin.get("/v1/fundings").json, two.admin.get(f"/v1/members/{two.member_a_id}").json)
    assert_error(_call(two.a, method, url, body), 403, "forbidden", set())
    assert (two.admin.get("/v1/contributors").json, two.admin.get("/v1/api-keys").json,
            two.admin.get("/v1/fundings").json, two.admin.get(f"/v1/members/{two.member_a_id}").json) == before


def test_an_admin_cannot_post_an_earnings_report_which_only_platforms_send(two: TwoPlatforms) -> None:
    response = two.admin.post("/v1/contributions", report("x-1", "w-1", "dash-plan", 100))
    assert_error(response, 403, "forbidden", set())


@pytest.mark.parametrize(("path", "body", "headers"), [
    ("/v1/crediting-rates", b"{", {}),
    ("/v1/crediting-rates", b"[]", {}),
    ("/v1/withdrawal-limits", b"not json", {"Content-Type": "text/plain"}),
    ("/v1/jobs/accrual/runs", b"{}", {"Idempotency-Key": "k" * 300}),
    ("/v1/contributors", b'{"id": 1, "id": 2}', {}),
])
def test_a_role_that_can_never_use_an_endpoint_gets_403_before_its_body_or_headers_are_read(
        two: TwoPlatforms, path: str, body: bytes, headers: dict[str, str]) -> None:
    """A member key on administrator endpoints: 403 ``forbidden``, not the 400 its malformed
    body, wrong content type or over-long ``Idempotency-Key`` would get from an administrator."""
    response = two.member_a.client.post(path, data=body, headers={
        **two.member_a.headers(), "Content-Type": "application/json", **headers})
    assert_error(response, 403, "forbidden", set())
    admin = two.admin.client.post(path, data=body, headers={
        **two.admin.headers(), "Content-Type": "application/json", **headers})
    assert admin.status_code == 400
