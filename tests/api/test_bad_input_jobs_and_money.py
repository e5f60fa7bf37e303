"""Hostile input to the newer endpoints: jobs, crediting rates, reconciliations, withdrawals,
limits, statements, tax summaries, self contributions, payment intents and Stripe's webhook.

API.md "Conventions" and "Authentication and roles": bad input gets the contract's error body
``{code, status, type, message, errors}`` with the right status (422 for a body field, 400 for
a query value or a bad signature), never a 500, and nothing is written; a role that can never
use an endpoint gets 403 ``forbidden``, a resource outside the caller's scope 404. The webhook's
signature is its credential: bad or stale, 400 and nothing stored. Concurrent twins (complete
and cancel of one withdrawal, one job key, reconciliations, one webhook event) settle exactly once.

The app here has a webhook secret (``whsec_test``) and no Stripe API key, so payment intents
answer 503 ``unavailable`` while a self contribution is still recorded (without an intent).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from flask import Flask
from sqlalchemy import func, select

from ledger.config import Settings
from ledger.db import Database
from ledger.tables import (
    Contribution,
    Funding,
    LedgerTransaction,
    StripeBalanceTransaction,
    StripeDispute,
    StripeEvent,
    StripePayment,
    StripePayout,
)
from tests.api.conftest import assert_error
from tests.conftest import Caller, Clock, new_caller
from tests.scenarios.helpers import line, platform, remit
from tests.scenarios.withdrawal_helpers import bank_platform, funded_member, held, new_member, withdrawal_body
from tests.stripe_support import payment_intent_obj, payout_obj, signed_event, stripe_event, stripe_signature

WEBHOOK_SECRET = "whsec_test"
WEBHOOK = "/v1/webhooks/stripe"
SPLIT = {"healthcare": 5000, "retirement": 3000, "training": 2000}
TABLES = (StripeEvent, StripePayment, StripeDispute, StripePayout, StripeBalanceTransaction, Funding,
          LedgerTransaction, Contribution)


@pytest.fixture
def settings(database_url: str) -> Settings:
    """The API with a webhook secret and no Stripe API key (no gateway)."""
    return Settings(database_url=database_url, stripe_webhook_secret=WEBHOOK_SECRET)


@dataclass
class Money:
    """A "bank" platform, a member with 10,000 available in healthcare (1,000 of it held by
    ``withdrawal``), that member's key, and another member with a key of their own."""

    admin: Caller
    bank: Caller
    member_id: str
    member: Caller
    other_id: str
    other: Caller
    withdrawal: dict[str, Any]
    database: Database

    def state(self) -> dict[str, Any]:
        """Everything a refused request could have changed, read through the API and the row counts."""
        verify = self.admin.post("/v1/ledger/verify")
        assert (verify.status_code, verify.json["ok"]) == (200, True), verify.json
        reads = {path: self.admin.get(path) for path in (
            f"/v1/members/{self.member_id}/balances", f"/v1/members/{self.member_id}/entries?limit=500",
            f"/v1/members/{self.member_id}/withdrawals?limit=500", f"/v1/members/{self.member_id}/contributions",
            f"/v1/members/{self.other_id}/contributions", "/v1/withdrawal-limits?limit=500",
            "/v1/crediting-rates?limit=500", "/v1/jobs/runs?limit=500", "/v1/reconciliations?limit=500",
            "/v1/remittances?limit=500", "/v1/fundings?limit=500", "/v1/ledger/trial-balance")}
        assert all(r.status_code == 200 for r in reads.values()), {p: r.status_code for p, r in reads.items()}
        return {**{p: r.json for p, r in reads.items()}, "rows": rows(self.database)}


def rows(database: Database) -> dict[str, int]:
    """Row counts of the tables a webhook or a posting writes."""
    return database.read(lambda s: {t.__tablename__: int(s.scalar(select(func.count()).select_from(t)) or 0)
                                    for t in TABLES})


@pytest.fixture
def money(app: Flask, admin: Caller, clock: Clock, database: Database) -> Money:
    bank = bank_platform(app, admin)
    member_id = funded_member(admin, bank, clock, "healthcare", 10_000)
    other_id = new_member(admin)
    hold = held(admin, member_id, "healthcare", 1_000)
    return Money(admin, bank, member_id, new_caller(app, admin, "member", member_id=member_id), other_id,
                 new_caller(app, admin, "member", member_id=other_id), hold, database)


def call(caller: Caller, method: str, path: str, body: Any = None, **kwargs: Any) -> Any:
    if body is not None:
        kwargs["json"] = body
    return caller.client.open(path, method=method, headers=caller.headers(kwargs.pop("headers", None)), **kwargs)


# -- roles: 403 for what a role never does, 404 outside the caller's scope ----------------------------


ADMIN_ONLY = [
    ("POST", "/v1/reconciliations", {}), ("GET", "/v1/reconciliations", None),
    ("GET", "/v1/reconciliations/rec_x", None),
    ("POST", "/v1/crediting-rates", {"bucket": "healthcare", "annual_rate_bps": 400, "effective_from": "2026-01-01"}),
    ("GET", "/v1/crediting-rates", None), ("POST", "/v1/jobs/accrual/runs", {"through": "2026-07-01"}),
    ("POST", "/v1/jobs/nope/runs", {"through": "nonsense"}), ("GET", "/v1/jobs/runs?limit=nonsense", None),
    ("POST", "/v1/withdrawal-limits", {"bucket": "retirement", "purpose": "ira_transfer", "tax_year": 2026,
                                       "limit_minor": 1}),
    ("GET", "/v1/withdrawal-limits?tax_year=nonsense", None), ("POST", "/v1/withdrawals/{w}/complete", None),
]
PLATFORM_NEVER = [
    ("POST", "/v1/members/{m}/contributions", {"external_id": "s-1", "amount_minor": 100, "currency": "USD"}),
    ("POST", "/v1/members/{m}/contributions", {"surprise": True}), ("GET", "/v1/members/{m}/contributions", None),
    ("POST", "/v1/members/{m}/withdrawals", withdrawal_body("healthcare", 100)),
    ("GET", "/v1/members/{m}/withdrawals", None), ("GET", "/v1/withdrawals/{w}", None),
    ("POST", "/v1/withdrawals/{w}/cancel", {"surprise": True}),
    ("GET", "/v1/members/{m}/statements/2026-13", None), ("GET", "/v1/members/{m}/tax-summaries/nope", None),
]
MEMBER_NEVER = [("POST", "/v1/remittances/{r}/payment-intents", None),
                ("POST", "/v1/remittances/{r}/payment-intents", {"surprise": True})]


@pytest.mark.parametrize(("role", "method", "path", "body"),
                         [("platform", *c) for c in ADMIN_ONLY + PLATFORM_NEVER]
                         + [("member", *c) for c in ADMIN_ONLY + MEMBER_NEVER])
def test_a_role_that_can_never_use_the_endpoint_is_forbidden_whatever_it_sends(
        money: Money, role: str, method: str, path: str, body: Any) -> None:
    caller = money.bank if role == "platform" else money.member
    remittance_id = money.admin.get("/v1/remittances").json["data"][0]["id"]
    url = path.format(m=money.member_id, w=money.withdrawal["id"], r=remittance_id)
    before = money.state()
    assert_error(call(caller, method, url, body), 403, "forbidden", set())
    assert money.state() == before


@pytest.mark.parametrize(("method", "path", "body"), [
    ("GET", "/v1/members/{m}/withdrawals", None), ("GET", "/v1/withdrawals/{w}", None),
    ("POST", "/v1/withdrawals/{w}/cancel", None),
    ("POST", "/v1/members/{m}/withdrawals", withdrawal_body("healthcare", 100)),
    ("GET", "/v1/members/{m}/statements/2026-07", None),
    ("GET", "/v1/members/{m}/statements/2026-07", {"headers": {"Accept": "text/csv"}}),
    ("GET", "/v1/members/{m}/tax-summaries/2026", None), ("GET", "/v1/members/{m}/contributions", None),
    ("POST", "/v1/members/{m}/contributions", {"external_id": "s-1", "amount_minor": 100, "currency": "USD",
                                               "allocation": SPLIT}),
])
def test_another_member_s_money_is_not_found_for_a_member_key(
        money: Money, method: str, path: str, body: Any) -> None:
    url = path.format(m=money.member_id, w=money.withdrawal["id"])
    kwargs = body if isinstance(body, dict) and "headers" in body else {}
    before = money.state()
    response = call(money.other, method, url, None if kwargs else body, **kwargs)
    assert_error(response, 404, "not_found", set())
    assert money.state() == before


def test_a_platform_asking_for_another_platform_s_payment_intent_gets_404(
        app: Flask, money: Money) -> None:
    rival = platform(app, money.admin, "rival")
    remittance_id = money.admin.get("/v1/remittances").json["data"][0]["id"]
    before = money.state()
    assert_error(rival.post(f"/v1/remittances/{remittance_id}/payment-intents"), 404, "not_found", set())
    assert_error(money.bank.post("/v1/remittances/rem_nope/payment-intents"), 404, "not_found", set())
    assert money.state() == before


# -- jobs -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("through", [
    "2026-07-15", "2026-07-16", "2999-12-31", "2026-02-30", "20260714", "2026-7-14", " 2026-07-14", "2026-07-14\n",
    "2026-07-14T00:00:00Z", "\uff12\uff10\uff12\uff16-07-14", "1899-12-31", "0001-01-01", "9999-12-31", "yesterday",
    "", None, 20260714, 2026.5, True, [], {},
])
def test_a_job_run_through_a_date_that_is_not_a_past_date_is_a_422_on_through(money: Money, through: Any) -> None:
    before = money.state()
    response = money.admin.post("/v1/jobs/accrual/runs", {"through": through})
    assert_error(response, 422, "validation_error", {"through"})
    assert money.state() == before


@pytest.mark.parametrize("data", ['{"through": NaN}', '{"through": "2026-07-01", "through": "2026-07-02"}',
                                  '["2026-07-01"]', '{"through": "2026-07-01"'])
def test_a_job_run_body_that_is_not_strict_json_is_malformed(money: Money, data: str) -> None:
    before = money.state()
    response = money.admin.client.post("/v1/jobs/accrual/runs", data=data, content_type="application/json",
                                       headers=money.admin.headers())
    assert_error(response, 400, "malformed_json", set())
    assert money.state() == before


@pytest.mark.parametrize("name", ["payroll", "ACCRUAL", "accrual%20", "accrual%00", "runs", "x" * 300])
@pytest.mark.parametrize("body", [{"through": "2026-07-01"}, {"through": "nonsense"}, {"unknown": 1}])
def test_an_unknown_job_is_not_found_whatever_the_body(money: Money, name: str, body: dict[str, Any]) -> None:
    before = money.state()
    assert_error(money.admin.post(f"/v1/jobs/{name}/runs", body), 404, "not_found", set())
    assert money.state() == before


@pytest.mark.parametrize("name", ["accrual", "close_remittances", "reconciliation"])
def test_a_job_key_runs_once_then_answers_200_with_that_run(money: Money, name: str) -> None:
    first = money.admin.post(f"/v1/jobs/{name}/runs", {"through": "2026-07-10"})
    assert (first.status_code, first.json["key"], first.json["status"]) == (201, f"{name}:2026-07-10", "succeeded")
    state = money.state()
    again = money.admin.post(f"/v1/jobs/{name}/runs", {"through": "2026-07-10"})
    assert (again.status_code, again.json) == (200, first.json)
    assert money.state() == state


def test_a_job_run_with_no_body_runs_through_yesterday(money: Money) -> None:
    response = money.admin.client.post("/v1/jobs/close_remittances/runs", headers=money.admin.headers())
    assert (response.status_code, response.json["through"]) == (201, "2026-07-14")


@pytest.mark.parametrize("query", ["limit=0", "limit=501", "limit=-1", "limit=1e2", "limit=%EF%BC%95",
                                   "cursor=abc", "cursor=%00", "name=payroll", "name=%00"])
def test_a_bad_job_runs_query_is_a_400(money: Money, query: str) -> None:
    field = query.split("=")[0]
    assert_error(money.admin.get(f"/v1/jobs/runs?{query}"), 400, "validation_error", {field})


# -- crediting rates ------------------------------------------------------------------------------

RATE = {"bucket": "healthcare", "annual_rate_bps": 400, "effective_from": "2026-01-01"}


@pytest.mark.parametrize(("field", "value"), [
    ("annual_rate_bps", 100_001), ("annual_rate_bps", -1), ("annual_rate_bps", 400.0), ("annual_rate_bps", "400"),
    ("annual_rate_bps", None), ("annual_rate_bps", True), ("annual_rate_bps", 10**30), ("bucket", "Healthcare"),
    ("bucket", None), ("bucket", "savings"), ("effective_from", "2026-02-30"), ("effective_from", "0001-01-01"),
    ("effective_from", "2026-01-01T00:00:00Z"), ("effective_from", None), ("surprise", 1),
])
def test_a_bad_crediting_rate_is_a_422_on_its_field_and_records_nothing(money: Money, field: str, value: Any) -> None:
    before = money.state()
    assert_error(money.admin.post("/v1/crediting-rates", {**RATE, field: value}), 422, "validation_error", {field})
    assert money.state() == before


def test_a_crediting_rate_with_every_field_missing_names_each(money: Money) -> None:
    response = money.admin.post("/v1/crediting-rates", {})
    assert_error(response, 422, "validation_error", {"bucket", "annual_rate_bps", "effective_from"})


@pytest.mark.parametrize("query", ["bucket=bogus", "bucket=%00", "limit=0", "cursor=zz"])
def test_a_bad_crediting_rates_query_is_a_400(money: Money, query: str) -> None:
    assert_error(money.admin.get(f"/v1/crediting-rates?{query}"), 400, "validation_error", {query.split("=")[0]})


# -- reconciliations ------------------------------------------------------------------------------


def test_a_reconciliation_with_a_body_field_is_a_422_and_stores_no_report(money: Money) -> None:
    before = money.state()
    assert_error(money.admin.post("/v1/reconciliations", {"since": "2026-01-01"}), 422, "validation_error",
                 {"since"})
    assert money.state() == before


def test_a_reconciliation_runs_without_stripe_and_is_read_back_the_same(money: Money) -> None:
    made = money.admin.post("/v1/reconciliations", {})
    assert made.status_code == 201, made.json
    assert (made.json["ok"], made.json["stripe"]["configured"]) == (True, False)
    assert money.admin.get(f"/v1/reconciliations/{made.json['id']}").json == made.json


@pytest.mark.parametrize("rec_id", ["rec_nope", "%00", "rec_%00", "x" * 500, "%F0%9F%98%80", "REC_X"])
def test_an_unknown_reconciliation_is_not_found(money: Money, rec_id: str) -> None:
    assert_error(money.admin.get(f"/v1/reconciliations/{rec_id}"), 404, "not_found", set())


@pytest.mark.parametrize("query", ["limit=0", "limit=abc", "cursor=zz"])
def test_a_bad_reconciliations_query_is_a_400(money: Money, query: str) -> None:
    assert_error(money.admin.get(f"/v1/reconciliations?{query}"), 400, "validation_error", {query.split("=")[0]})


# -- withdrawals ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("field", "value"), [
    ("payee", "a\u0000b"), ("payee", "\ud800"), ("payee", 5), ("payee", ["x"]), ("payee", None),
    ("payee", "\U0001f600" * 201), ("currency", "XYZ"), ("currency", 5), ("currency", None), ("currency", "US"),
    ("bucket", None), ("bucket", "HEALTHCARE"), ("purpose", None), ("purpose", "PREMIUM"),
    ("amount_minor", 2**63), ("amount_minor", -(2**63)), ("amount_minor", [1]), ("amount_minor", {"v": 1}),
])
def test_a_bad_withdrawal_is_a_422_on_its_field_and_moves_nothing(money: Money, field: str, value: Any) -> None:
    before = money.state()
    body = {**withdrawal_body("healthcare", 100, "premium"), field: value}
    response = money.member.post(f"/v1/members/{money.member_id}/withdrawals", body)
    assert_error(response, 422, "validation_error", {field})
    assert money.state() == before


def test_a_withdrawal_with_no_body_names_every_required_field(money: Money) -> None:
    before = money.state()
    response = money.admin.client.post(f"/v1/members/{money.member_id}/withdrawals", headers=money.admin.headers())
    assert_error(response, 422, "validation_error", {"bucket", "amount_minor", "currency", "purpose", "payee"})
    assert money.state() == before


@pytest.mark.parametrize("currency", ["EUR", "JPY"])
def test_a_withdrawal_in_a_currency_the_member_does_not_hold_is_insufficient_funds(
        money: Money, currency: str) -> None:
    before = money.state()
    body = {**withdrawal_body("healthcare", 100, "premium"), "currency": currency}
    response = money.member.post(f"/v1/members/{money.member_id}/withdrawals", body)
    assert_error(response, 409, "insufficient_funds")
    assert money.state() == before


def test_a_payee_of_200_astral_characters_is_kept_exactly(money: Money) -> None:
    payee = "\U0001f600" * 200
    response = money.member.post(f"/v1/members/{money.member_id}/withdrawals",
                                 withdrawal_body("healthcare", 100, "premium", payee=payee))
    assert (response.status_code, response.json["payee"]) == (201, payee)


@pytest.mark.parametrize("withdrawal_id", ["wdr_nope", "%00", "wdr_%00", "x" * 3000, "%F0%9F%98%80", "UPPER"])
@pytest.mark.parametrize(("method", "action"), [("GET", ""), ("POST", "/complete"), ("POST", "/cancel")])
def test_an_unknown_withdrawal_is_not_found(money: Money, withdrawal_id: str, method: str, action: str) -> None:
    wid = money.withdrawal["id"].upper() if withdrawal_id == "UPPER" else withdrawal_id
    before = money.state()
    assert_error(call(money.admin, method, f"/v1/withdrawals/{wid}{action}"), 404, "not_found", set())
    assert money.state() == before


@pytest.mark.parametrize("action", ["complete", "cancel"])
def test_a_complete_or_cancel_with_a_body_field_is_a_422_and_moves_nothing(money: Money, action: str) -> None:
    before = money.state()
    response = money.admin.post(f"/v1/withdrawals/{money.withdrawal['id']}/{action}", {"amount_minor": 1})
    assert_error(response, 422, "validation_error", {"amount_minor"})
    assert money.state() == before


@pytest.mark.parametrize("first", ["complete", "cancel"])
def test_a_second_transition_is_a_409_and_moves_nothing(money: Money, first: str) -> None:
    done = money.admin.post(f"/v1/withdrawals/{money.withdrawal['id']}/{first}")
    assert done.status_code == 200, done.json
    state = money.state()
    for action in ("complete", "cancel"):
        assert_error(money.admin.post(f"/v1/withdrawals/{money.withdrawal['id']}/{action}"), 409, "conflict")
    assert_error(money.member.post(f"/v1/withdrawals/{money.withdrawal['id']}/cancel"), 409, "conflict")
    assert money.state() == state


@pytest.mark.parametrize("query", ["status=bogus", "status=HELD", "status=%00", "limit=0", "cursor=zz"])
def test_a_bad_withdrawals_query_is_a_400(money: Money, query: str) -> None:
    response = money.member.get(f"/v1/members/{money.member_id}/withdrawals?{query}")
    assert_error(response, 400, "validation_error", {query.split("=")[0]})


@pytest.mark.parametrize("member_id", ["mem_nope", "mem_%00", "m" * 5000])
def test_withdrawals_of_a_member_that_does_not_exist_are_not_found(money: Money, member_id: str) -> None:
    before = money.state()
    assert_error(money.admin.get(f"/v1/members/{member_id}/withdrawals"), 404, "not_found", set())
    response = money.admin.post(f"/v1/members/{member_id}/withdrawals", withdrawal_body("healthcare", 100))
    assert_error(response, 404, "not_found", set())
    assert money.state() == before


# -- withdrawal limits ----------------------------------------------------------------------------

LIMIT = {"bucket": "retirement", "purpose": "ira_transfer", "tax_year": 2026, "limit_minor": 750_000}


@pytest.mark.parametrize(("change", "field"), [
    ({"tax_year": 1899}, "tax_year"), ({"tax_year": 10_000}, "tax_year"), ({"tax_year": 2026.0}, "tax_year"),
    ({"tax_year": True}, "tax_year"), ({"limit_minor": -1}, "limit_minor"),
    ({"limit_minor": 10**12 + 1}, "limit_minor"),
    ({"limit_minor": 2**64}, "limit_minor"), ({"currency": "usd"}, "currency"), ({"currency": "XYZ"}, "currency"),
    ({"currency": None}, "currency"), ({"coverage": 5}, "coverage"), ({"catch_up": None}, "catch_up"),
    ({"catch_up": "x"}, "catch_up"), ({"catch_up": {}}, "catch_up"), ({"catch_up": [None]}, "catch_up"),
    ({"catch_up": [1]}, "catch_up"), ({"catch_up": [{"min_age": 151, "extra_minor": 1}]}, "catch_up"),
    ({"catch_up": [{"min_age": 50, "extra_minor": 1, "x": 1}]}, "catch_up"),
    ({"catch_up": [{"min_age": 50, "extra_minor": 10**13}]}, "catch_up"),
    ({"catch_up": [{"min_age": "50", "extra_minor": 1}]}, "catch_up"),
    ({"catch_up": [{"min_age": age, "extra_minor": 1} for age in range(21)]}, "catch_up"),
    ({"bucket": "retirement", "purpose": "premium"}, "purpose"), ({"surprise": 1}, "surprise"),
])
def test_a_bad_limit_is_a_422_on_its_field_and_records_nothing(
        money: Money, change: dict[str, Any], field: str) -> None:
    before = money.state()
    assert_error(money.admin.post("/v1/withdrawal-limits", {**LIMIT, **change}), 422, "validation_error", {field})
    assert money.state() == before


@pytest.mark.parametrize("query", ["tax_year=abc", "tax_year=%00", "tax_year=2026.0", "limit=0", "cursor=zz"])
def test_a_bad_limits_query_is_a_400(money: Money, query: str) -> None:
    assert_error(money.admin.get(f"/v1/withdrawal-limits?{query}"), 400, "validation_error", {query.split("=")[0]})


# -- statements and tax summaries -----------------------------------------------------------------


@pytest.mark.parametrize("month", [
    "2026-13", "2026-00", "2026-7", "2026-007", "26-07", "\uff12\uff10\uff12\uff16-07", "2026-0\uff17", "2026_07",
    "2026-07%0A", "%202026-07", "-2026-07", "2026--7", "2026-07-01", "abcd-ef", "2026-1a", "2026-+7",
    "2026-\u00b27", "2026-08", "9999-12", "1899-12", "0000-01",
])
@pytest.mark.parametrize("accept", ["application/json", "text/csv"])
def test_a_statement_month_that_is_not_a_begun_yyyy_mm_is_a_422_on_month(
        money: Money, month: str, accept: str) -> None:
    response = money.member.get(f"/v1/members/{money.member_id}/statements/{month}", headers={"Accept": accept})
    assert response.mimetype == "application/json"
    assert_error(response, 422, "validation_error", {"month"})


@pytest.mark.parametrize("currency", ["usd", "XYZ", "", "%00", "US", "USDD"])
def test_a_statement_or_tax_summary_currency_that_is_not_iso_4217_is_a_400(money: Money, currency: str) -> None:
    for path in (f"statements/2026-07?currency={currency}", f"tax-summaries/2026?currency={currency}"):
        response = money.member.get(f"/v1/members/{money.member_id}/{path}")
        assert_error(response, 400, "validation_error", {"currency"})


def test_a_statement_in_another_currency_is_empty_and_balances(money: Money) -> None:
    body = money.member.get(f"/v1/members/{money.member_id}/statements/2026-07?currency=EUR").json
    assert (body["currency"], body["entries"], body["totals_by_contributor"]) == ("EUR", [], [])
    assert all(v == 0 for bucket in body["buckets"].values() for v in bucket.values())


@pytest.mark.parametrize("accept", ["text/csv", "application/json;q=0.1, text/csv", "text/*"])
def test_a_csv_statement_holds_the_same_closing_figures(money: Money, accept: str) -> None:
    path = f"/v1/members/{money.member_id}/statements/2026-07"
    as_json = money.member.get(path).json
    response = money.member.get(path, headers={"Accept": accept})
    assert (response.status_code, response.mimetype) == (200, "text/csv")
    lines = response.get_data(as_text=True).splitlines()
    assert lines[0].startswith("line,effective_at,bucket,balance,kind")
    closing = {(cells[2], cells[3]): int(cells[6]) for cells in (row.split(",") for row in lines[1:])
               if cells[0] == "closing"}
    assert closing[("healthcare", "available")] == as_json["buckets"]["healthcare"]["closing_available_minor"] == 9_000
    assert closing[("healthcare", "held")] == as_json["buckets"]["healthcare"]["closing_held_minor"] == 1_000


@pytest.mark.parametrize("accept", ["*/*", "text/html", "image/png", "", "garbage;;;",
                                    "text/csv;q=0.5, application/json"])
def test_any_other_accept_header_gets_json(money: Money, accept: str) -> None:
    response = money.member.get(f"/v1/members/{money.member_id}/statements/2026-07", headers={"Accept": accept})
    assert (response.status_code, response.mimetype, response.json["month"]) == (200, "application/json", "2026-07")


@pytest.mark.parametrize("year", ["26", "20266", "\uff12\uff10\uff12\uff16", "2026.0", "-202", "+202", "abcd",
                                  "\u00b2\u2070\u00b2\u2076", "2027", "9999", "1899", "0000"])
def test_a_tax_year_that_is_not_a_begun_yyyy_is_a_422_on_year(money: Money, year: str) -> None:
    assert_error(money.member.get(f"/v1/members/{money.member_id}/tax-summaries/{year}"), 422, "validation_error",
                 {"year"})


@pytest.mark.parametrize("path", ["statements/2026-07", "tax-summaries/2026"])
@pytest.mark.parametrize("member_id", ["mem_nope", "mem_%00"])
def test_a_statement_or_tax_summary_of_an_unknown_member_is_not_found(money: Money, path: str, member_id: str) -> None:
    assert_error(money.admin.get(f"/v1/members/{member_id}/{path}"), 404, "not_found", set())


def test_a_tax_summary_counts_the_held_withdrawal(money: Money) -> None:
    body = money.member.get(f"/v1/members/{money.member_id}/tax-summaries/2026").json
    assert body["withdrawals"] == [{"bucket": "healthcare", "purpose": "premium", "completed_minor": 0,
                                    "held_minor": 1_000}]
    assert body["totals_by_contributor"] == [{"contributor_id": "bank", "amount_minor": 10_000}]


# -- self contributions and payment intents -------------------------------------------------------

SELF = {"external_id": "self-1", "amount_minor": 500, "currency": "USD", "allocation": SPLIT}


@pytest.mark.parametrize(("field", "value"), [
    ("allocation", None), ("allocation", {}), ("allocation", {"healthcare": 10_000}), ("allocation", [1]),
    ("allocation", "x"), ("allocation", {"healthcare": 5000, "retirement": 3000, "training": 1999}),
    ("allocation", {"healthcare": 10_001, "retirement": -1, "training": 0}),
    ("allocation", {"healthcare": 10_000.0, "retirement": 0, "training": 0}),
    ("allocation", {**SPLIT, "savings": 0}), ("external_id", "self 1"), ("external_id", "s\n"),
    ("external_id", ""), ("external_id", None), ("external_id", "x" * 65), ("external_id", 5),
    ("amount_minor", 0), ("amount_minor", 10**12 + 1), ("amount_minor", 1.0), ("amount_minor", "1"),
    ("amount_minor", None), ("amount_minor", True), ("amount_minor", 2**70), ("currency", "usd"),
    ("currency", "XYZ"), ("currency", None), ("currency", 840), ("surprise", 1),
])
def test_a_bad_self_contribution_is_a_422_on_its_field_and_records_nothing(
        money: Money, field: str, value: Any) -> None:
    before = money.state()
    response = money.member.post(f"/v1/members/{money.member_id}/contributions", {**SELF, field: value})
    assert_error(response, 422, "validation_error", {field})
    assert money.state() == before


def test_a_self_contribution_without_an_allocation_or_an_election_is_a_422_on_allocation(money: Money) -> None:
    before = money.state()
    body = {k: v for k, v in SELF.items() if k != "allocation"}
    response = money.other.post(f"/v1/members/{money.other_id}/contributions", body)
    assert_error(response, 422, "validation_error", {"allocation"})
    assert money.state() == before


def test_a_self_contribution_again_answers_the_first_and_another_under_its_id_is_a_409(money: Money) -> None:
    path = f"/v1/members/{money.member_id}/contributions"
    first = money.member.post(path, SELF)
    assert (first.status_code, first.json["status"], first.json["payment_intent_id"]) == (201, "pending", None)
    state = money.state()
    reordered = {**SELF, "allocation": {"training": 2000, "retirement": 3000, "healthcare": 5000}}
    again = money.member.post(path, reordered)
    assert (again.status_code, again.json) == (200, first.json)
    assert_error(money.member.post(path, {**SELF, "amount_minor": 501}), 409, "conflict", {"external_id"})
    assert_error(money.member.post(path, {**SELF, "allocation": {**SPLIT, "training": 1000, "retirement": 4000}}),
                 409, "conflict", {"external_id"})
    assert money.state() == state


def test_a_payment_intent_without_stripe_configured_is_unavailable_and_records_nothing(
        money: Money) -> None:
    money.admin.post("/v1/enrollments", {"contributor_id": "bank", "worker_ref": "w-pi", "member_id": money.other_id})
    owed = remit(money.bank, "owed-1", [line("owed-1:0", "w-pi", "all-training", 12_345,
                                             period_start="2026-07-01", period_end="2026-07-10")])
    before = money.state()
    for caller in (money.bank, money.admin):
        response = caller.post(f"/v1/remittances/{owed['id']}/payment-intents")
        assert_error(response, 503, "unavailable", set())
        assert response.headers["Retry-After"]
    assert money.state() == before


def test_a_payment_intent_for_a_remittance_that_owes_nothing_is_a_409(money: Money) -> None:
    funded = money.admin.get("/v1/remittances").json["data"][0]
    assert funded["short_minor"] == 0
    before = money.state()
    assert_error(money.bank.post(f"/v1/remittances/{funded['id']}/payment-intents"), 409, "conflict")
    assert_error(money.bank.post(f"/v1/remittances/{funded['id']}/payment-intents", {"amount_minor": 1}),
                 422, "validation_error", {"amount_minor"})
    assert money.state() == before


# -- the Stripe webhook ---------------------------------------------------------------------------


def deliver_raw(client: Any, body: bytes, signature: str | None) -> Any:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["Stripe-Signature"] = signature
    return client.post(WEBHOOK, data=body, headers=headers)


def deliver(client: Any, event: dict[str, Any]) -> Any:
    body, signature = signed_event(event, WEBHOOK_SECRET)
    return deliver_raw(client, body, signature)


def intent_event(remittance_id: str = "rem_none", amount: int = 1_000, status: str = "succeeded",
                 **changes: Any) -> dict[str, Any]:
    """A ``payment_intent.*`` event for ``pi_odd`` (``changes`` replace the intent's fields)."""
    changes.pop("status_override", None)
    intent = {**payment_intent_obj("pi_odd", amount, "usd", status, {"remittance_id": remittance_id}), **changes}
    return stripe_event(f"payment_intent.{status}", intent)


def processing(**changes: Any) -> dict[str, Any]:
    """An intent still processing: nothing received yet, so nothing to book."""
    return intent_event(status="processing", **changes)


def _without(mapping: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in mapping.items() if k != key}


def test_a_bad_or_stale_signature_is_a_400_and_stores_nothing(money: Money, client: Any) -> None:
    body = json.dumps(intent_event()).encode()
    now = int(time.time())
    signatures = [
        None, "", "garbage", "t=123", "t=abc,v1=00", f"t={now},v0={'0' * 64}", f"t={now},v1={'0' * 64}",
        stripe_signature(body, "whsec_other"), stripe_signature(body, WEBHOOK_SECRET, now - 301),
        "t=" + "9" * 5000 + ",v1=00", stripe_signature(body + b" ", WEBHOOK_SECRET),
    ]
    before = money.state()
    for signature in signatures:
        assert_error(deliver_raw(client, body, signature), 400, "validation_error", set())
    assert money.state() == before


@pytest.mark.parametrize("body", [b"", b"not json", b"[1, 2]", b'"event"', b"null", b'{"id": "\xff"}',
                                  b'{"id": "evt_x"', b'{"id": ' + b"9" * 5000 + b"}"])
def test_a_signed_body_that_is_not_a_json_object_is_a_400_and_stores_nothing(
        money: Money, client: Any, body: bytes) -> None:
    before = money.state()
    response = deliver_raw(client, body, stripe_signature(body, WEBHOOK_SECRET))
    assert_error(response, 400, "validation_error", set())
    assert money.state() == before


ODD_REFUSED = {
    "missing-id": _without(intent_event(), "id"),
    "id-int": {**intent_event(), "id": 5},
    "id-null": {**intent_event(), "id": None},
    "id-empty": {**intent_event(), "id": ""},
    "id-list": {**intent_event(), "id": ["evt_1"]},
    "id-256": {**intent_event(), "id": "e" * 256},
    "amount-string": intent_event(amount="1000"),
    "amount-float": intent_event(amount=10.5, amount_received=10.5),
    "amount-bool": intent_event(amount=True, amount_received=True),
    "amount-received-list": intent_event(amount_received=[1000]),
    "currency-xyz": intent_event(currency="xyz"),
    "currency-int": intent_event(currency=5),
    "currency-null": intent_event(currency=None),
    "currency-object": intent_event(currency={"code": "usd"}),
    "latest-charge-id-int": intent_event(latest_charge={"id": 5}),
    "negative-amount": intent_event(amount=-100, amount_received=-100),
    "amount-past-10-12": intent_event(amount=10**12 + 1, amount_received=10**12 + 1),
    "amount-past-bigint": intent_event(amount=2**63, amount_received=2**63),
    "object-without-id": stripe_event("payment_intent.succeeded", _without(
        payment_intent_obj("pi_odd", 1_000, "usd", "succeeded", {}), "id")),
    "object-id-with-nul": intent_event(id="pi_\u0000x"),
    "event-id-with-nul": {**intent_event(), "id": "evt_\u0000x"},
    "status-too-long": intent_event(status_override=None, **{"status": "s" * 65}),
    "latest-charge-without-id": intent_event(latest_charge={"object": "charge", "amount": 1_000}),
}


@pytest.mark.parametrize("name", ODD_REFUSED)
def test_a_signed_event_with_unusable_content_is_refused_without_a_500_and_stores_nothing(
        money: Money, client: Any, name: str) -> None:
    before = money.state()
    response = deliver(client, ODD_REFUSED[name])
    body = assert_error(response, 422, "validation_error")
    assert body["message"]
    assert money.state() == before


@pytest.mark.parametrize(("raw", "token"), [("NaN", "NaN"), ("Infinity", "Infinity"), ("1e999", "1e999")])
def test_a_signed_event_with_a_non_finite_amount_is_refused_and_stores_nothing(
        money: Money, client: Any, raw: str, token: str) -> None:
    marker = "__AMOUNT__"
    body = json.dumps(intent_event(amount=marker, amount_received=marker)).replace(f'"{marker}"', token).encode()
    before = money.state()
    assert_error(deliver_raw(client, body, stripe_signature(body, WEBHOOK_SECRET)), 422, "validation_error")
    assert money.state() == before


ODD_KEPT = {
    "data-list": ({**processing(), "data": [1]}, "ignored"),
    "data-string": ({**processing(), "data": "x"}, "ignored"),
    "data-null": ({**processing(), "data": None}, "ignored"),
    "object-list": ({**processing(), "data": {"object": [1, 2]}}, "ignored"),
    "type-missing": (_without(processing(), "type"), "ignored"),
    "type-int": ({**processing(), "type": 5}, "ignored"),
    "type-unknown": ({**processing(), "type": "customer.created"}, "ignored"),
    "object-kind-unknown": (stripe_event("payment_intent.succeeded", {"object": "customer", "id": "cus_1"}), "ignored"),
    "metadata-list": (processing(metadata=[1, 2]), "unmatched"),
    "metadata-string": (processing(metadata="rem_x"), "unmatched"),
    "metadata-nested": (processing(metadata={"remittance_id": {"a": [1, {"b": None}]}, "x": [[[]]]}), "unmatched"),
    "created-float": ({**processing(), "created": 1.5e9}, "unmatched"),
    "created-huge": ({**processing(), "created": 10**40}, "unmatched"),
    "created-string": ({**processing(), "created": "yesterday"}, "unmatched"),
    "nested-junk": ({**processing(), "request": {"a": [[[[{"b": [None, True, 1.5]}]]]]}, "extra": {"x": {}}},
                    "unmatched"),
}


@pytest.mark.parametrize("name", ODD_KEPT)
def test_a_signed_event_with_odd_but_harmless_content_is_kept_once_and_moves_no_money(
        money: Money, client: Any, name: str) -> None:
    event, outcome = ODD_KEPT[name]
    before = money.state()
    first = deliver(client, event)
    assert first.status_code == 200, first.json
    assert (first.json["duplicate"], first.json["outcome"], first.json["event_id"]) == (False, outcome, event["id"])
    again = deliver(client, event)
    assert (again.status_code, again.json["duplicate"]) == (200, True)
    after = money.state()
    assert after["rows"]["stripe_events"] == before["rows"]["stripe_events"] + 1
    assert after["rows"]["ledger_transactions"] == before["rows"]["ledger_transactions"]
    assert after["rows"]["fundings"] == before["rows"]["fundings"]
    assert {k: v for k, v in after.items() if k != "rows"} == {k: v for k, v in before.items() if k != "rows"}


def test_a_signed_event_for_an_unknown_remittance_is_unmatched_money_not_a_funding_of_anything(
        money: Money, client: Any) -> None:
    remittances = money.admin.get("/v1/remittances").json
    response = deliver(client, intent_event("rem_does_not_exist", amount=2_500))
    assert (response.status_code, response.json["outcome"]) == (200, "unmatched")
    unmatched = money.admin.get("/v1/fundings?unmatched=true").json["data"]
    assert [(f["remittance_id"], f["amount_minor"]) for f in unmatched] == [(None, 2_500)]
    assert money.admin.get("/v1/remittances").json == remittances
    assert money.admin.post("/v1/ledger/verify").json["ok"] is True


# -- concurrency ----------------------------------------------------------------------------------


def all_at_once(count: int, send: Callable[[int], requests.Response]) -> list[requests.Response]:
    """``send(i)`` for i in range(count), released together from one barrier."""
    barrier = threading.Barrier(count)

    def go(i: int) -> requests.Response:
        barrier.wait(timeout=30)
        return send(i)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(go, range(count)))


def bearer(caller: Caller) -> dict[str, str]:
    return {"Authorization": f"Bearer {caller.key}"}


@pytest.mark.parametrize("trial", range(3))
def test_complete_and_cancel_of_one_withdrawal_at_once_exactly_one_wins(
        money: Money, live_server: str, trial: int) -> None:
    wid = money.withdrawal["id"]
    actions = ("complete", "cancel")
    responses = all_at_once(2, lambda i: requests.post(f"{live_server}/v1/withdrawals/{wid}/{actions[i]}",
                                                       headers=bearer(money.admin), timeout=60))
    statuses = [r.status_code for r in responses]
    assert sorted(statuses) == [200, 409], [r.json() for r in responses]
    loser = responses[statuses.index(409)].json()
    assert (loser["code"], loser["type"]) == (409, "conflict")
    winner = responses[statuses.index(200)].json()
    final = money.admin.get(f"/v1/withdrawals/{wid}").json
    assert final["status"] == winner["status"] in ("completed", "cancelled")
    healthcare = money.admin.get(f"/v1/members/{money.member_id}/balances").json["buckets"]["healthcare"]
    expected = 9_000 if winner["status"] == "completed" else 10_000
    assert (healthcare["available_minor"], healthcare["held_minor"]) == (expected, 0)
    assert money.admin.post("/v1/ledger/verify").json["ok"] is True


@pytest.mark.parametrize("name", ["accrual", "close_remittances", "reconciliation"])
def test_the_same_job_run_posted_twice_at_once_runs_once(money: Money, live_server: str, name: str) -> None:
    responses = all_at_once(2, lambda i: requests.post(f"{live_server}/v1/jobs/{name}/runs",
                                                       json={"through": "2026-07-12"}, headers=bearer(money.admin),
                                                       timeout=60))
    statuses = sorted(r.status_code for r in responses)
    assert statuses in ([201, 409], [200, 201]), [r.json() for r in responses]
    for r in responses:
        if r.status_code == 409:
            assert (r.json()["code"], r.json()["type"]) == (409, "conflict")
        else:
            assert (r.json()["key"], r.json()["status"]) == (f"{name}:2026-07-12", "succeeded")
    runs = money.admin.get("/v1/jobs/runs").json["data"]
    assert [(r["key"], r["status"], r["attempts"]) for r in runs] == [(f"{name}:2026-07-12", "succeeded", 1)]
    reports = money.admin.get("/v1/reconciliations").json["data"]
    assert len(reports) == (1 if name == "reconciliation" else 0)
    assert money.admin.post("/v1/ledger/verify").json["ok"] is True


def test_two_reconciliations_at_once_each_store_one_whole_report(money: Money, live_server: str) -> None:
    responses = all_at_once(2, lambda i: requests.post(f"{live_server}/v1/reconciliations",
                                                       headers=bearer(money.admin), timeout=60))
    assert [r.status_code for r in responses] == [201, 201], [r.json() for r in responses]
    ids = {r.json()["id"] for r in responses}
    assert len(ids) == 2
    for r in responses:
        assert r.json()["ok"] is True
        assert money.admin.get(f"/v1/reconciliations/{r.json()['id']}").json == r.json()
    assert {r["id"] for r in money.admin.get("/v1/reconciliations").json["data"]} == ids


def test_the_same_signed_event_five_times_at_once_funds_its_remittance_once(
        money: Money, live_server: str) -> None:
    money.admin.post("/v1/enrollments", {"contributor_id": "bank", "worker_ref": "w-wh", "member_id": money.other_id})
    owed = remit(money.bank, "owed-wh", [line("owed-wh:0", "w-wh", "all-training", 12_345,
                                              period_start="2026-07-01", period_end="2026-07-10")])
    before = rows(money.database)
    body, signature = signed_event(intent_event(owed["id"], amount=12_345), WEBHOOK_SECRET)
    headers = {"Stripe-Signature": signature, "Content-Type": "application/json"}
    responses = all_at_once(5, lambda i: requests.post(f"{live_server}{WEBHOOK}", data=body, headers=headers,
                                                       timeout=60))
    assert [r.status_code for r in responses] == [200] * 5, [r.text for r in responses]
    assert sorted(r.json()["duplicate"] for r in responses) == [False, True, True, True, True]
    assert {r.json()["outcome"] for r in responses} == {"applied"}
    after = rows(money.database)
    assert after["stripe_events"] == before["stripe_events"] + 1
    assert after["stripe_payments"] == before["stripe_payments"] + 1
    assert after["fundings"] == before["fundings"] + 1
    remittance = money.admin.get(f"/v1/remittances/{owed['id']}").json
    assert (remittance["status"], remittance["amount_funded_minor"], remittance["short_minor"]) == ("funded", 12_345, 0)
    training = money.admin.get(f"/v1/members/{money.other_id}/balances").json["buckets"]["training"]
    assert (training["available_minor"], training["pending_minor"]) == (12_345, 0)
    assert money.admin.post("/v1/ledger/verify").json["ok"] is True


def test_a_payout_event_five_times_at_once_moves_the_money_once(money: Money, live_server: str) -> None:
    before = rows(money.database)
    body, signature = signed_event(stripe_event("payout.paid", payout_obj("po_once", 700, "usd", "paid")),
                                   WEBHOOK_SECRET)
    headers = {"Stripe-Signature": signature, "Content-Type": "application/json"}
    responses = all_at_once(5, lambda i: requests.post(f"{live_server}{WEBHOOK}", data=body, headers=headers,
                                                       timeout=60))
    assert sorted((r.status_code, r.json()["duplicate"]) for r in responses) == [(200, False)] + [(200, True)] * 4
    after = rows(money.database)
    assert (after["stripe_events"], after["stripe_payouts"], after["ledger_transactions"]) == (
        before["stripe_events"] + 1, before["stripe_payouts"] + 1, before["ledger_transactions"] + 1)
    assert money.admin.post("/v1/ledger/verify").json["ok"] is True
