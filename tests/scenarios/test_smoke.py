"""The first path end to end: enroll, report twice in a quarter, fund, read balances."""

from flask import Flask

from tests.conftest import Caller
from tests.factories import enroll, make_platform, report


def test_second_report_in_quarter_posts_the_whole_period_once_it_is_eligible(app: Flask, admin: Caller) -> None:
    platform = make_platform(app, admin, period="quarter", min_earnings_minor=75000)
    member_id = enroll(platform, "w-1")
    first = platform.post("/v1/contributions", report("r1", "w-1", "dash-plan", 60000))
    second = platform.post("/v1/contributions", report("r2", "w-1", "dash-plan", 50000))
    assert (first.status_code, first.json["amount_minor"], first.json["status"]) == (201, 0, "available")
    assert (second.status_code, second.json["amount_minor"]) == (201, 4400)
    assert second.json["allocations"] == {"healthcare": 2200, "retirement": 1320, "training": 880}
    balances = admin.get(f"/v1/members/{member_id}/balances").json
    assert balances["total"] == {"pending_minor": 4400, "available_minor": 0, "held_minor": 0}
    assert admin.post("/v1/ledger/verify").json["ok"] is True
