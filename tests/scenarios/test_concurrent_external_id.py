"""two reports under one external_id sent at once (different workers) must answer
201 and 409 (API.md: "another report under a used external_id -> 409"; "No input gets a
500"), on PostgreSQL too."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest
from flask import Flask

from tests.conftest import Caller
from tests.scenarios.helpers import assert_books_balance, enroll, line, platform
from tests.scenarios.test_concurrency import Http, all_at_once, client_for  # noqa: F401


@pytest.fixture
def dash(app: Flask, admin: Caller) -> Caller:
    caller = platform(app, admin, "dash", **{"dash-m": {}})
    for i in range(2):
        enroll(caller, f"w-{i}")
    return caller


@pytest.mark.parametrize("round_", range(3))
def test_one_external_id_for_two_workers_at_once_is_201_and_409(
        client_for: Callable[[Caller], Http], admin: Caller, dash: Caller, round_: int) -> None:  # noqa: F811
    http = client_for(dash)
    calls = [lambda i=i: http.post("/v1/contributions", line(f"dup-{round_}", f"w-{i}", "dash-m", 10_000))
             for i in range(2)]

    responses = all_at_once(calls)

    assert Counter(r.status_code for r in responses) == {201: 1, 409: 1}, [r.text for r in responses]
    assert_books_balance(admin)


@pytest.mark.parametrize("round_", range(3))
def test_one_line_external_id_in_two_batches_at_once_is_201_and_422(
        client_for: Callable[[Caller], Http], admin: Caller, dash: Caller, round_: int) -> None:  # noqa: F811
    http = client_for(dash)
    calls = [lambda i=i: http.post("/v1/remittances", {
        "external_id": f"R-{round_}-{i}", "currency": "USD",
        "lines": [line(f"dup-{round_}", f"w-{i}", "dash-m", 10_000)]}) for i in range(2)]

    responses = all_at_once(calls)

    assert Counter(r.status_code for r in responses) == {201: 1, 422: 1}, [r.text for r in responses]
    assert_books_balance(admin)
