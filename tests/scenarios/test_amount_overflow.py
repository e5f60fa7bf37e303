"""Amounts inside the contract's bounds never overflow the ledger (API.md: no input gets a
500). A per_job plan of 10^12 per job computes 10^18 for 10^6 jobs: refused with a 422 on
the report, nothing recorded; a report adding exactly 10^12 is accepted."""

from __future__ import annotations

import pytest
from flask import Flask

from tests.conftest import Caller
from tests.scenarios.helpers import assert_books_balance, enroll, get, line, platform

BIG_JOB = {"basis": "per_job", "rate_bps": None, "amount_minor": 10**12}
TOO_LARGE = ["This report would add 1000000000000000000 minor units, more than the largest contribution "
             "the ledger accepts (1000000000000)."]


@pytest.fixture
def dash(app: Flask, admin: Caller) -> Caller:
    caller = platform(app, admin, "dash", **{"dash-job": BIG_JOB})
    for i in range(10):
        enroll(caller, f"w-{i}")
    return caller


def test_a_batch_of_reports_each_owing_10_to_the_18_is_refused_line_by_line(admin: Caller, dash: Caller) -> None:
    lines = [line(f"j-{i}", f"w-{i}", "dash-job", 0, jobs=10**6) for i in range(10)]
    response = dash.post("/v1/remittances", {"external_id": "R", "currency": "USD", "lines": lines})
    assert (response.status_code, response.json["type"]) == (422, "validation_error")
    assert response.json["errors"]["lines"] == {str(i): {"_schema": TOO_LARGE} for i in range(10)}
    assert get(admin, "/v1/remittances")["data"] == []
    assert get(admin, "/v1/contributions")["data"] == []
    assert_books_balance(admin)


def test_a_single_report_owing_more_than_10_to_the_12_is_refused(admin: Caller, dash: Caller) -> None:
    response = dash.post("/v1/contributions", line("j-0", "w-0", "dash-job", 0, jobs=10**6))
    assert (response.status_code, response.json["errors"]) == (422, {"_schema": TOO_LARGE})
    assert get(admin, "/v1/contributions")["data"] == []
    assert_books_balance(admin)


def test_a_report_adding_exactly_10_to_the_12_is_accepted(admin: Caller, dash: Caller) -> None:
    response = dash.post("/v1/contributions", line("j-0", "w-0", "dash-job", 0, jobs=1))
    assert (response.status_code, response.json["amount_minor"]) == (201, 10**12)
    assert_books_balance(admin)
