"""DOMAIN.md's worked examples 2-9 told through the HTTP API, with the exact cents a user checks.

Example 1 (pure arithmetic) lives in tests/unit/test_worked_examples.py; here each story
enrolls workers, posts earnings reports with a platform key and reads what the member and
the administrator see. After each story the books balance (verify ok, trial balance 0).
"""

from __future__ import annotations

from flask import Flask

from tests.conftest import Caller, Clock
from tests.scenarios.helpers import (
    assert_books_balance,
    at,
    buckets,
    contribute,
    enroll,
    get,
    line,
    platform,
    split,
    totals,
)

QUARTER_750 = {"period": "quarter", "min_earnings_minor": 75_000}


def test_two_platforms_fund_one_account_linked_by_a_link_code_2769_1661_1107(app: Flask, admin: Caller) -> None:
    dash = platform(app, admin, "dash", **{"dash-4pct": {}})
    lyft = platform(app, admin, "lyft", **{"lyft-3pct": {"rate_bps": 300}})
    member_id = enroll(dash, "d-77")
    code = admin.post(f"/v1/members/{member_id}/link-codes")
    assert code.status_code == 201, code.json
    assert enroll(lyft, "l-12", link_code=code.json["code"]) == member_id

    a = contribute(dash, line("a-1", "d-77", "dash-4pct", 100_000))
    b = contribute(lyft, line("b-1", "l-12", "lyft-3pct", 51_237))

    assert (a["amount_minor"], split(a)) == (4_000, (2_000, 1_200, 800))
    assert (b["amount_minor"], split(b)) == (1_537, (769, 461, 307))
    assert a["member_id"] == b["member_id"] == member_id
    assert buckets(admin, member_id) == (2_769, 1_661, 1_107)
    assert totals(admin, member_id) == {"pending_minor": 5_537, "available_minor": 0, "held_minor": 0}
    assert_books_balance(admin)


def test_three_reports_of_3_33_in_a_month_post_13_14_13_never_39_in_total(app: Flask, admin: Caller) -> None:
    dash = platform(app, admin, "dash", **{"dash-4pct": {}})
    member_id = enroll(dash, "w-1")

    posted = [contribute(dash, line(f"r{i}", "w-1", "dash-4pct", 333)) for i in range(3)]

    assert [c["amount_minor"] for c in posted] == [13, 14, 13]
    assert [split(c) for c in posted] == [(6, 4, 3), (7, 4, 3), (6, 4, 3)]
    assert buckets(admin, member_id) == (19, 12, 9)
    assert sum(buckets(admin, member_id)) == 40
    assert_books_balance(admin)


def test_a_1000_pre_tip_quarterly_threshold_counts_earnings_without_tips(app: Flask, admin: Caller) -> None:
    dash = platform(app, admin, "dash", **{"dash-q": {"period": "quarter", "min_earnings_minor": 100_000}})
    members = [enroll(dash, ref) for ref in ("w-exact", "w-tips", "w-short")]

    exact = contribute(dash, line("q-1", "w-exact", "dash-q", 100_000))
    with_tips = contribute(dash, line("q-2", "w-tips", "dash-q", 105_000, tips_minor=10_000))
    short = contribute(dash, line("q-3", "w-short", "dash-q", 99_999))

    assert (exact["amount_minor"], exact["eligible"]) == (4_000, True)
    assert (with_tips["amount_minor"], with_tips["eligible"], with_tips["status"]) == (0, False, "available")
    assert (short["amount_minor"], short["eligible"]) == (0, False)
    assert [sum(buckets(admin, m)) for m in members] == [4_000, 0, 0]
    assert_books_balance(admin)


def test_600_on_each_of_two_platforms_never_combine_to_reach_a_750_threshold(app: Flask, admin: Caller) -> None:
    dash = platform(app, admin, "dash", **{"dash-q": QUARTER_750})
    lyft = platform(app, admin, "lyft", **{"lyft-q": QUARTER_750})
    member_id = enroll(dash, "d-1")
    code = admin.post(f"/v1/members/{member_id}/link-codes").json["code"]
    enroll(lyft, "l-1", link_code=code)

    a = contribute(dash, line("a-1", "d-1", "dash-q", 60_000))
    b = contribute(lyft, line("b-1", "l-1", "lyft-q", 60_000))

    assert (a["amount_minor"], b["amount_minor"]) == (0, 0)
    assert (a["eligible"], b["eligible"]) == (False, False)
    assert totals(admin, member_id) == {"pending_minor": 0, "available_minor": 0, "held_minor": 0}
    contributions = get(admin, f"/v1/members/{member_id}/contributions")["data"]
    assert sorted(c["period_basis_earnings_minor"] for c in contributions) == [60_000, 60_000]
    assert_books_balance(admin)


def test_a_member_s_several_worker_refs_at_one_platform_count_as_one_member(app: Flask, admin: Caller) -> None:
    dash = platform(app, admin, "dash", **{"dash-q": QUARTER_750})
    member_id = enroll(dash, "old-ref")
    admin_link = admin.post("/v1/enrollments", {"contributor_id": "dash", "worker_ref": "new-ref",
                                                "member_id": member_id})
    assert admin_link.status_code == 201, admin_link.json

    first = contribute(dash, line("a-1", "old-ref", "dash-q", 60_000))
    second = contribute(dash, line("a-2", "new-ref", "dash-q", 50_000))

    assert (first["amount_minor"], second["amount_minor"]) == (0, 4_400)
    assert sum(buckets(admin, member_id)) == 4_400
    assert_books_balance(admin)


def test_eligibility_persists_three_quarters_3200_1200_400_200_then_0(
        app: Flask, admin: Caller, clock: Clock) -> None:
    clock.now = at("2026-04-02T10:00")
    dash = platform(app, admin, "wisc", **{"wisc-q": {**QUARTER_750, "eligibility_persists_periods": 3}})
    member_id = enroll(dash, "w-1")
    quarters = [  # (posted on, period_start, period_end, earnings)
        ("2026-04-02T10:00", "2026-01-01", "2026-03-31", 80_000),
        ("2026-07-02T10:00", "2026-04-01", "2026-06-30", 30_000),
        ("2026-10-02T10:00", "2026-07-01", "2026-09-30", 10_000),
        ("2027-01-02T10:00", "2026-10-01", "2026-12-31", 5_000),
        ("2027-04-02T10:00", "2027-01-01", "2027-03-31", 70_000),
    ]

    posted = []
    for index, (when, start, end, gross) in enumerate(quarters):
        clock.now = at(when)
        posted.append(contribute(dash, line(f"q{index}", "w-1", "wisc-q", gross, start, end)))

    assert [c["amount_minor"] for c in posted] == [3_200, 1_200, 400, 200, 0]
    assert [c["eligible"] for c in posted] == [True, True, True, True, False]
    assert sum(buckets(admin, member_id)) == 5_000
    assert_books_balance(admin)


def test_a_report_of_a_period_still_in_progress_is_refused_until_it_is_over(
        app: Flask, admin: Caller, clock: Clock) -> None:
    dash = platform(app, admin, "dash", **{"dash-q": QUARTER_750})
    enroll(dash, "w-1")

    early = dash.post("/v1/contributions", line("q3", "w-1", "dash-q", 80_000, "2026-07-01", "2026-09-30"))
    clock.now = at("2026-10-01T08:00")
    late = dash.post("/v1/contributions", line("q3", "w-1", "dash-q", 80_000, "2026-07-01", "2026-09-30"))

    assert (early.status_code, list(early.json["errors"])) == (422, ["period_end"])
    assert (late.status_code, late.json["amount_minor"]) == (201, 3_200)
    assert_books_balance(admin)


def test_second_report_of_a_quarter_posts_4400_after_the_first_posted_0(app: Flask, admin: Caller) -> None:
    dash = platform(app, admin, "dash", **{"dash-q": QUARTER_750})
    member_id = enroll(dash, "w-1")

    first = contribute(dash, line("r-600", "w-1", "dash-q", 60_000))
    second = contribute(dash, line("r-500", "w-1", "dash-q", 50_000, "2026-05-01", "2026-05-31"))

    assert (first["amount_minor"], first["eligible"], first["status"]) == (0, False, "available")
    assert (second["amount_minor"], second["eligible"], second["status"]) == (4_400, True, "pending")
    assert split(second) == (2_200, 1_320, 880)
    assert buckets(admin, member_id) == (2_200, 1_320, 880)
    assert_books_balance(admin)


def test_the_same_report_sent_again_posts_nothing_and_answers_200(app: Flask, admin: Caller) -> None:
    dash = platform(app, admin, "dash", **{"dash-4pct": {}})
    member_id = enroll(dash, "w-1")

    first = contribute(dash, line("r-1", "w-1", "dash-4pct", 100_000))
    again = contribute(dash, line("r-1", "w-1", "dash-4pct", 100_000), status=200)
    other = dash.post("/v1/contributions", line("r-1", "w-1", "dash-4pct", 100_001))

    assert again["id"] == first["id"] and again["amount_minor"] == 4_000
    assert (other.status_code, other.json["type"]) == (409, "conflict")
    assert sum(buckets(admin, member_id)) == 4_000
    assert_books_balance(admin)


def test_massachusetts_tiers_pay_53700_at_255_hours_and_107400_at_330_hours(app: Flask, admin: Caller) -> None:
    tiers = {"method": "tiers", "tiers": [{"min_minutes": 15 * 13 * 60, "percent_bps": 5000},
                                          {"min_minutes": 25 * 13 * 60, "percent_bps": 10000}]}
    uber = platform(app, admin, "uber", **{"ma-health": {
        "basis": "flat_per_period", "rate_bps": None, "amount_minor": 107_400, "period": "quarter",
        "proration": tiers, "allocation": {"healthcare": 10000, "retirement": 0, "training": 0}}})
    half, full, none = (enroll(uber, ref) for ref in ("w-255h", "w-330h", "w-150h"))

    at_255 = contribute(uber, line("h-1", "w-255h", "ma-health", 0, engaged_minutes=255 * 60))
    at_330 = contribute(uber, line("h-2", "w-330h", "ma-health", 0, engaged_minutes=330 * 60))
    at_150 = contribute(uber, line("h-3", "w-150h", "ma-health", 0, engaged_minutes=150 * 60))

    assert (at_255["amount_minor"], split(at_255)) == (53_700, (53_700, 0, 0))
    assert (at_330["amount_minor"], split(at_330)) == (107_400, (107_400, 0, 0))
    assert at_150["amount_minor"] == 0
    assert [buckets(admin, m) for m in (half, full, none)] == [(53_700, 0, 0), (107_400, 0, 0), (0, 0, 0)]
    assert_books_balance(admin)


def test_hours_reported_in_two_parts_reach_the_full_tier_and_post_the_other_half(app: Flask, admin: Caller) -> None:
    tiers = {"method": "tiers", "tiers": [{"min_minutes": 11_700, "percent_bps": 5000},
                                          {"min_minutes": 19_500, "percent_bps": 10000}]}
    uber = platform(app, admin, "uber", **{"ma-health": {
        "basis": "flat_per_period", "rate_bps": None, "amount_minor": 107_400, "period": "quarter",
        "proration": tiers}})
    member_id = enroll(uber, "w-1")

    april = contribute(uber, line("h-4", "w-1", "ma-health", 0, engaged_minutes=255 * 60))
    may = contribute(uber, line("h-5", "w-1", "ma-health", 0, "2026-05-01", "2026-05-31", engaged_minutes=75 * 60))

    assert (april["amount_minor"], may["amount_minor"]) == (53_700, 53_700)
    assert sum(buckets(admin, member_id)) == 107_400
    assert_books_balance(admin)


def test_a_tier_schedule_that_pays_less_for_more_minutes_is_refused_before_any_report(
        app: Flask, admin: Caller) -> None:
    platform(app, admin, "uber")
    backwards = {"method": "tiers", "tiers": [{"min_minutes": 100, "percent_bps": 10000},
                                              {"min_minutes": 200, "percent_bps": 5000}]}

    response = admin.post("/v1/contributors/uber/plans", {
        "id": "backwards", "basis": "flat_per_period", "amount_minor": 1_000, "proration": backwards,
        "allocation": {"healthcare": 10000, "retirement": 0, "training": 0}, "effective_from": "2026-01-01"})

    assert response.status_code == 422, response.json
    assert list(response.json["errors"]["proration"]) == ["tiers"]
    assert get(admin, "/v1/contributors/uber/plans")["data"] == []


def test_an_annual_cap_of_5000_with_4900_owed_posts_only_the_remaining_100(app: Flask, admin: Caller) -> None:
    dash = platform(app, admin, "dash", **{"dash-capped": {"rate_bps": 1000, "annual_cap_minor": 500_000}})
    member_id = enroll(dash, "w-1")

    january = contribute(dash, line("jan", "w-1", "dash-capped", 4_900_000, "2026-01-01", "2026-01-31"))
    february = contribute(dash, line("feb", "w-1", "dash-capped", 300_000, "2026-02-01", "2026-02-28"))
    march = contribute(dash, line("mar", "w-1", "dash-capped", 300_000, "2026-03-01", "2026-03-31"))

    assert (january["amount_minor"], february["amount_minor"], march["amount_minor"]) == (490_000, 10_000, 0)
    assert split(february) == (5_000, 3_000, 2_000)
    assert sum(buckets(admin, member_id)) == 500_000
    assert_books_balance(admin)


def test_an_annual_cap_starts_again_in_the_next_calendar_year(app: Flask, admin: Caller, clock: Clock) -> None:
    dash = platform(app, admin, "dash", **{"dash-capped": {"rate_bps": 1000, "annual_cap_minor": 500_000,
                                                           "effective_from": "2025-01-01"}})
    member_id = enroll(dash, "w-1")

    dec = contribute(dash, line("dec", "w-1", "dash-capped", 6_000_000, "2025-12-01", "2025-12-31"))
    jan = contribute(dash, line("jan", "w-1", "dash-capped", 300_000, "2026-01-01", "2026-01-31"))

    assert (dec["amount_minor"], jan["amount_minor"]) == (500_000, 30_000)
    assert sum(buckets(admin, member_id)) == 530_000
    assert_books_balance(admin)


def test_reversing_the_500_report_voids_4400_and_a_new_200_report_posts_3200(app: Flask, admin: Caller) -> None:
    dash = platform(app, admin, "dash", **{"dash-q": QUARTER_750})
    member_id = enroll(dash, "w-1")
    first = contribute(dash, line("r-600", "w-1", "dash-q", 60_000))
    second = contribute(dash, line("r-500", "w-1", "dash-q", 50_000))

    reversal = dash.post(f"/v1/contributions/{second['id']}/reversal", {"reason": "sent in error"})

    assert reversal.status_code == 201, reversal.json
    assert sorted(reversal.json["reversed"]) == sorted([first["id"], second["id"]])
    assert reversal.json["replacement"] is None
    assert get(dash, f"/v1/contributions/{second['id']}")["status"] == "void"
    assert get(dash, f"/v1/contributions/{second['id']}")["reversed_at"] is not None
    assert totals(admin, member_id) == {"pending_minor": 0, "available_minor": 0, "held_minor": 0}
    assert get(dash, f"/v1/remittances/{second['remittance_id']}")["amount_due_minor"] == 0
    entries = get(admin, f"/v1/members/{member_id}/entries")["data"]
    assert sorted(e["amount_minor"] for e in entries if e["kind"] == "contribution_void") == [-2_200, -1_320, -880]

    third = contribute(dash, line("r-200", "w-1", "dash-q", 20_000))

    assert (third["amount_minor"], split(third)) == (3_200, (1_600, 960, 640))
    assert buckets(admin, member_id) == (1_600, 960, 640)
    assert get(dash, f"/v1/remittances/{third['remittance_id']}")["amount_due_minor"] == 3_200
    assert_books_balance(admin)


def test_a_member_election_splits_new_contributions_and_a_fixed_plan_ignores_it(app: Flask, admin: Caller) -> None:
    dash = platform(app, admin, "dash", **{
        "dash-elect": {"allocation_mode": "member_election"},
        "dash-fixed": {"allocation_mode": "fixed"},
    })
    member_id = enroll(dash, "w-1")
    no_election_yet = contribute(dash, line("e-0", "w-1", "dash-elect", 100_000, "2026-03-01", "2026-03-31"))
    elected = admin.put(f"/v1/members/{member_id}/allocation",
                        {"healthcare": 2000, "retirement": 7000, "training": 1000})
    assert elected.status_code == 200, elected.json

    by_election = contribute(dash, line("e-1", "w-1", "dash-elect", 100_000))
    by_plan = contribute(dash, line("f-1", "w-1", "dash-fixed", 100_000))

    assert split(no_election_yet) == (2_000, 1_200, 800)
    assert split(by_election) == (800, 2_800, 400)
    assert split(by_plan) == (2_000, 1_200, 800)
    assert buckets(admin, member_id) == (4_800, 5_200, 2_000)
    assert_books_balance(admin)


def test_a_later_election_applies_only_to_what_a_report_adds_after_it(app: Flask, admin: Caller) -> None:
    dash = platform(app, admin, "dash", **{"dash-elect": {"allocation_mode": "member_election"}})
    member_id = enroll(dash, "w-1")
    admin.put(f"/v1/members/{member_id}/allocation", {"healthcare": 10000, "retirement": 0, "training": 0})
    first = contribute(dash, line("e-1", "w-1", "dash-elect", 100_000))
    admin.put(f"/v1/members/{member_id}/allocation", {"healthcare": 0, "retirement": 0, "training": 10000})

    second = contribute(dash, line("e-2", "w-1", "dash-elect", 50_000))

    assert (first["amount_minor"], split(first)) == (4_000, (4_000, 0, 0))
    assert (second["amount_minor"], split(second)) == (2_000, (0, 0, 2_000))
    assert buckets(admin, member_id) == (4_000, 0, 2_000)
    assert_books_balance(admin)


def test_a_late_report_for_an_earlier_quarter_does_not_revisit_the_later_one_until_it_reports_again(
        app: Flask, admin: Caller) -> None:
    dash = platform(app, admin, "wisc", **{"wisc-q": {**QUARTER_750, "eligibility_persists_periods": 3,
                                                      "effective_from": "2026-01-01"}})
    member_id = enroll(dash, "w-1")
    q1 = contribute(dash, line("q1-a", "w-1", "wisc-q", 30_000, "2026-01-01", "2026-03-31"))
    q2 = contribute(dash, line("q2-a", "w-1", "wisc-q", 30_000, "2026-04-01", "2026-06-30"))

    late_q1 = contribute(dash, line("q1-b", "w-1", "wisc-q", 50_000, "2026-02-01", "2026-02-28"))
    after_late_report = sum(buckets(admin, member_id))  # Q2 is not revisited
    more_q2 = contribute(dash, line("q2-b", "w-1", "wisc-q", 1_000, "2026-06-01", "2026-06-30"))

    assert (q1["amount_minor"], q2["amount_minor"]) == (0, 0)
    assert (late_q1["amount_minor"], late_q1["eligible"]) == (3_200, True)
    assert after_late_report == 3_200
    assert (more_q2["amount_minor"], more_q2["eligible"]) == (1_240, True)  # 4% of $310, eligible by persisting
    assert sum(buckets(admin, member_id)) == 4_440
    assert_books_balance(admin)


def test_per_hour_plans_pay_by_the_minute_rounded_once_and_per_job_plans_pay_per_job(
        app: Flask, admin: Caller) -> None:
    dash = platform(app, admin, "alia", **{
        "hourly": {"basis": "per_hour", "rate_bps": None, "amount_minor": 200},  # $2.00 an engaged hour
        "per-clean": {"basis": "per_job", "rate_bps": None, "amount_minor": 500},  # $5 per cleaning
    })
    member_id = enroll(dash, "w-1")

    minutes = [contribute(dash, line(f"h-{i}", "w-1", "hourly", 0, engaged_minutes=1)) for i in range(3)]
    hour_and_a_half = contribute(dash, line("h-90", "w-1", "hourly", 0, "2026-05-01", "2026-05-31",
                                            engaged_minutes=90))
    cleanings = contribute(dash, line("j-3", "w-1", "per-clean", 0, jobs=3))

    assert [c["amount_minor"] for c in minutes] == [3, 4, 3]  # 3.33, 6.67, 10.00 for the month
    assert hour_and_a_half["amount_minor"] == 300
    assert (cleanings["amount_minor"], split(cleanings)) == (1_500, (750, 450, 300))
    assert sum(buckets(admin, member_id)) == 1_810
    assert_books_balance(admin)


def test_a_gross_basis_plan_counts_tips_toward_the_threshold_and_the_amount(app: Flask, admin: Caller) -> None:
    dash = platform(app, admin, "dash", **{"gross-q": {"period": "quarter", "min_earnings_minor": 100_000,
                                                       "earnings_basis": "gross"}})
    member_id = enroll(dash, "w-1")

    posted = contribute(dash, line("g-1", "w-1", "gross-q", 105_000, tips_minor=10_000))

    assert (posted["amount_minor"], posted["eligible"]) == (4_200, True)
    assert sum(buckets(admin, member_id)) == 4_200
    assert_books_balance(admin)


def test_a_report_before_the_plan_s_effective_from_is_refused_on_period_start(app: Flask, admin: Caller) -> None:
    dash = platform(app, admin, "dash", **{"dash-may": {"effective_from": "2026-05-01"}})
    enroll(dash, "w-1")

    refused = dash.post("/v1/contributions", line("early", "w-1", "dash-may", 100_000))

    assert (refused.status_code, list(refused.json["errors"])) == (422, ["period_start"])
    assert get(admin, "/v1/contributions")["data"] == []
    assert_books_balance(admin)
