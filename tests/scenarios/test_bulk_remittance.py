"""A recordkeeper's big batch: 2,000 lines for 500 members in one remittance, all or nothing.

The expected cents are computed here independently of the ledger: per member and month,
4% of the month's summed earnings, rounded half-up once (DOMAIN.md "Contributions").
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest
from flask import Flask

from tests.conftest import Caller
from tests.scenarios.helpers import assert_books_balance, enroll, get, line, platform, totals

MEMBERS = 500
LINES_PER_MEMBER = 4
MONTHS = {0: ("2026-04-01", "2026-04-30"), 1: ("2026-05-01", "2026-05-31")}


def four_percent_half_up(cents: int) -> int:
    """4% of ``cents``, rounded half-up, in integers only."""
    return (400 * cents + 5_000) // 10_000


def bulk_lines(prefix: str = "bulk") -> list[dict[str, Any]]:
    """2,000 lines: member i's four lines fall in April (even i) or May (odd i), interleaved."""
    lines = []
    for k in range(LINES_PER_MEMBER):
        for i in range(MEMBERS):
            start, end = MONTHS[i % 2]
            lines.append(line(f"{prefix}:{i}:{k}", f"w-{i}", "dash-m", 12_345 + 7 * i + 1_001 * k, start, end))
    return lines


def expected_by_worker(lines: list[dict[str, Any]]) -> dict[str, int]:
    """What each worker is owed: 4% of each month's sum, rounded once per month."""
    earned: dict[tuple[str, str], int] = defaultdict(int)
    for body in lines:
        earned[(body["worker_ref"], body["period_start"])] += body["gross_earnings_minor"]
    owed: dict[str, int] = defaultdict(int)
    for (worker_ref, _), cents in earned.items():
        owed[worker_ref] += four_percent_half_up(cents)
    return owed


@pytest.fixture
def dash(app: Flask, admin: Caller) -> tuple[Caller, dict[str, str]]:
    """A platform with a monthly 4% plan and 500 enrolled workers (worker_ref -> member id)."""
    caller = platform(app, admin, "dash", **{"dash-m": {}})
    return caller, {f"w-{i}": enroll(caller, f"w-{i}") for i in range(MEMBERS)}


def test_a_2000_line_remittance_for_500_members_posts_the_exact_total(
        admin: Caller, dash: tuple[Caller, dict[str, str]]) -> None:
    caller, members = dash
    lines = bulk_lines()
    owed = expected_by_worker(lines)

    response = caller.post("/v1/remittances", {"external_id": "bulk-2026-05", "currency": "USD", "lines": lines})

    assert response.status_code == 201, response.json
    rem = response.json
    assert (rem["line_count"], rem["status"], rem["amount_due_minor"]) == (2_000, "awaiting_funds", sum(owed.values()))
    assert sum(owed.values()) == 1_247_440  # sum over i < 500 of round(4% x (55,386 + 28 i))
    for worker_ref in ("w-0", "w-1", "w-250", "w-499"):
        assert totals(admin, members[worker_ref])["pending_minor"] == owed[worker_ref], worker_ref
    contributions = []
    cursor = None
    while True:
        page = get(admin, f"/v1/remittances/{rem['id']}/contributions?limit=500"
                          + (f"&cursor={cursor}" if cursor else ""))
        contributions += page["data"]
        cursor = page["next_cursor"]
        if not page["has_more"]:
            break
    assert len(contributions) == 2_000
    assert sum(c["amount_minor"] for c in contributions) == rem["amount_due_minor"]
    assert_books_balance(admin)


def test_a_dry_run_records_nothing_and_answers_the_amount_a_real_post_then_records(
        admin: Caller, dash: tuple[Caller, dict[str, str]]) -> None:
    caller, members = dash
    lines = bulk_lines()
    body = {"external_id": "bulk-2026-05", "currency": "USD", "lines": lines}

    dry = caller.post("/v1/remittances?dry_run=true", body)

    assert dry.status_code == 200, dry.json
    assert (dry.json["dry_run"], dry.json["external_id"], dry.json["line_count"]) == (True, "bulk-2026-05", 2_000)
    assert dry.json["amount_due_minor"] == sum(expected_by_worker(lines).values())
    assert sum(each["amount_minor"] for each in dry.json["lines"]) == dry.json["amount_due_minor"]
    assert get(admin, "/v1/contributions")["data"] == []
    assert get(admin, "/v1/remittances")["data"] == []
    assert totals(admin, members["w-0"]) == {"pending_minor": 0, "available_minor": 0, "held_minor": 0}
    assert get(admin, f"/v1/members/{members['w-0']}/entries")["data"] == []
    assert_books_balance(admin)

    real = caller.post("/v1/remittances", body)

    assert real.status_code == 201, real.json
    assert real.json["amount_due_minor"] == dry.json["amount_due_minor"]
    assert_books_balance(admin)

    again = caller.post("/v1/remittances?dry_run=true", body)

    assert (again.status_code, again.json["type"], again.json["errors"]) == \
        (409, "conflict", {"external_id": ["Already recorded."]})
    assert again.json["message"] == f"this external_id is already recorded as remittance {real.json['id']}"


def test_one_bad_line_in_2000_refuses_the_whole_remittance_naming_its_index(
        admin: Caller, dash: tuple[Caller, dict[str, str]]) -> None:
    caller, _ = dash
    lines = bulk_lines()
    lines[1_234]["worker_ref"] = "never-enrolled"

    response = caller.post("/v1/remittances", {"external_id": "bulk-bad", "currency": "USD", "lines": lines})

    assert response.status_code == 422, response.json
    assert response.json["errors"]["lines"] == {"1234": {"worker_ref": ["Not enrolled with this contributor."]}}
    assert get(admin, "/v1/contributions")["data"] == []
    assert get(admin, "/v1/remittances")["data"] == []
    assert_books_balance(admin)
