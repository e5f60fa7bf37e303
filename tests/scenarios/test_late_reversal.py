"""A reversal in an earlier period after a later period posted on the eligibility it gave.

DOMAIN.md: only the reported period is recomputed, and a period's total only goes down
through its own reversal. The later period keeps what it posted; a new report there posts
nothing more while the period is no longer eligible.
"""

from flask import Flask

from tests.conftest import Caller
from tests.factories import enroll, make_platform, report


def test_later_period_keeps_what_it_posted_when_an_earlier_qualifying_report_is_reversed(
    app: Flask, admin: Caller
) -> None:
    platform = make_platform(app, admin, period="quarter", min_earnings_minor=75000, eligibility_persists_periods=3)
    member_id = enroll(platform, "w-1")
    q1 = platform.post("/v1/contributions", report("q1", "w-1", "dash-plan", 80000, "2026-01-01", "2026-03-31"))
    q2 = platform.post("/v1/contributions", report("q2", "w-1", "dash-plan", 30000, "2026-04-01", "2026-06-30"))
    assert (q1.json["amount_minor"], q2.json["amount_minor"]) == (3200, 1200)

    reversal = platform.post(f"/v1/contributions/{q1.json['id']}/reversal", {"reason": "reported in error"})
    assert reversal.status_code == 201
    assert reversal.json["replacement"] is None

    later = platform.post("/v1/contributions", report("q2b", "w-1", "dash-plan", 1000, "2026-04-01", "2026-06-30"))
    assert (later.status_code, later.json["amount_minor"], later.json["eligible"]) == (201, 0, False)
    balances = admin.get(f"/v1/members/{member_id}/balances").json
    assert balances["total"]["pending_minor"] == 1200
    assert admin.post("/v1/ledger/verify").json["ok"] is True
