"""DOMAIN.md "Funding, pending and available" and "Reconciliation" with Stripe, in exact cents.

Money paid by card reaches the ledger through Stripe's signed webhooks (POSTed here through
the API exactly as Stripe sends them) or, when a webhook is lost, through reconciliation,
which reads Stripe's balance transactions. Each test's docstring says what plays Stripe:
- localstripe: the stateful Stripe look-alike (real PaymentIntents, paid by card); the events
  are built from the objects it returns for them (it sends no ``charge.*`` events);
- signed event payloads built in the test (``tests.stripe_support`` builders) for what
  localstripe lacks (disputes, fees, USD payouts);
- RecordedStripe: recorded Stripe answers for reconciliation's reads (fees, ``?payout=``).
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from flask import Flask

from ledger.db import Database
from tests.conftest import Caller, Clock, new_caller
from tests.scenarios.helpers import (
    assert_books_balance,
    at,
    buckets,
    contribution,
    enroll,
    get,
    line,
    money,
    platform,
    remit,
    remittance,
    split,
    suspense_minor,
    totals,
)
from tests.scenarios.stripe_helpers import (
    WEBHOOK_PATH,
    WEBHOOK_SECRET,
    activity,
    at_status,
    balance,
    balances,
    charge_event,
    deliver,
    delivered,
    event_count,
    intent_event,
    own_intent,
    paid,
    payment_intent,
    payout_row,
    reconcile,
    refund_obj,
    remit_in,
    reopened_minor,
    serve,
    transaction_kinds,
    trial_balance,
)
from tests.stripe_support import (
    LocalStripe,
    RecordedStripe,
    balance_txn_obj,
    charge_obj,
    dispute_obj,
    list_obj,
    payment_intent_obj,
    payout_obj,
    signed_event,
    stripe_event,
    stripe_id,
)

#: reports whose contributions are exactly 4,000, 1,537 and 2,210 cents (as in test_funding)
OWES_4000 = ("w-1", "dash-4pct", 100_000)  # 4% of $1,000.00
OWES_1537 = ("w-2", "dash-3pct", 51_237)  # 3% of $512.37 = 1,537.11
OWES_2210 = ("w-3", "dash-4pct", 55_250)  # 4% of $552.50
DASH_PLANS: dict[str, dict[str, Any]] = {"dash-4pct": {}, "dash-3pct": {"rate_bps": 300}}
WORKERS = ("w-1", "w-2", "w-3", "w-4")


def dash_platform(app: Flask, admin: Caller) -> Caller:
    """A platform with a 4% and a 3% monthly plan (fixed 50/30/20) and four enrolled workers."""
    caller = platform(app, admin, "dash", **DASH_PLANS)
    for worker_ref in WORKERS:
        enroll(caller, worker_ref)
    return caller


@pytest.fixture
def dash(stripe_app: Flask, stripe_admin: Caller) -> Caller:
    """``dash_platform`` on the API wired to localstripe."""
    return dash_platform(stripe_app, stripe_admin)


@pytest.fixture
def recorded_dash(recorded_app: Flask, recorded_admin: Caller) -> Caller:
    """``dash_platform`` on the API wired to RecordedStripe."""
    return dash_platform(recorded_app, recorded_admin)


def batch(caller: Caller, external_id: str, *owed: tuple[str, str, int]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Post a remittance of ``owed`` lines; returns it and its contributions in line order."""
    lines = [line(f"{external_id}:{i}", ref, plan, gross) for i, (ref, plan, gross) in enumerate(owed)]
    rem = remit(caller, external_id, lines)
    listed = get(caller, f"/v1/remittances/{rem['id']}/contributions")["data"]
    by_external_id = {c["external_id"]: c for c in listed}
    return rem, [by_external_id[body["external_id"]] for body in lines]


def statuses(caller: Caller, contributions: list[dict[str, Any]]) -> list[str]:
    """Each contribution's status, read now."""
    return [contribution(caller, c["id"])["status"] for c in contributions]


def fundings(caller: Caller, remittance_id: str) -> list[tuple[str, str, int, int, int]]:
    """A remittance's fundings as (source, reference, amount, applied, returned), oldest first."""
    rows = get(caller, f"/v1/remittances/{remittance_id}/fundings")["data"]
    return [(f["source"], f["reference"], f["amount_minor"], f["applied_minor"], f["returned_minor"])
            for f in reversed(rows)]


def member_balances(admin: Caller, member_ids: list[str]) -> list[dict[str, Any]]:
    """Each member's balances body without its ``as_of`` (which moves with the clock)."""
    result = []
    for member_id in member_ids:
        body = get(admin, f"/v1/members/{member_id}/balances")
        result.append({k: v for k, v in body.items() if k != "as_of"})
    return result


# --------------------------------------------------------------------------- paid in parts


def test_a_remittance_paid_in_two_parts_then_overpaid_by_500_is_partially_funded_then_funded_then_in_credit(
        stripe_admin: Caller, dash: Caller, stripe_reset: LocalStripe, database: Database) -> None:
    """localstripe: real PaymentIntents paid by card; each payment_intent.succeeded is the intent
    localstripe returns, signed and POSTed to the webhook.

    Stripe collects an intent's whole amount and ours is always for the whole short amount, so
    the first part (56.00) and the extra 5.00 are paid through intents the contributor creates on
    Stripe itself, naming the remittance in their metadata (its own Stripe integration); the
    second part (21.47) through ``POST /v1/remittances/{id}/payment-intents``.
    """
    client = stripe_admin.client
    rem, lines = batch(dash, "R", OWES_4000, OWES_1537, OWES_2210)
    assert money(rem) == ("awaiting_funds", 7_747, 0, 7_747, 0)

    first = own_intent(stripe_reset, 5_600, "USD", rem["id"])
    paid(stripe_reset, first)
    answer = delivered(client, intent_event(stripe_reset, first))

    assert (answer["outcome"], answer["duplicate"]) == ("applied", False)
    assert statuses(dash, lines) == ["available", "available", "pending"]  # oldest first, whole, stops at 2,210
    assert money(remittance(dash, rem["id"])) == ("partially_funded", 7_747, 5_600, 2_147, 0)
    assert suspense_minor(database, rem["id"]) == 63
    assert [totals(stripe_admin, c["member_id"])["available_minor"] for c in lines] == [4_000, 1_537, 0]

    intent = payment_intent(dash, rem["id"])
    again = payment_intent(dash, rem["id"])
    at_stripe = stripe_reset.client().v1.payment_intents.retrieve(intent["payment_intent_id"])

    assert (intent["amount_minor"], intent["currency"], intent["remittance_id"]) == (2_147, "USD", rem["id"])
    assert again["payment_intent_id"] == intent["payment_intent_id"]  # the open intent for the same amount
    assert (at_stripe.amount, at_stripe.currency, at_stripe.metadata.to_dict()) == (
        2_147, "usd", {"remittance_id": rem["id"]})

    paid(stripe_reset, intent["payment_intent_id"])
    delivered(client, intent_event(stripe_reset, intent["payment_intent_id"]))

    assert statuses(dash, lines) == ["available", "available", "available"]
    assert money(remittance(dash, rem["id"])) == ("funded", 7_747, 7_747, 0, 0)
    assert suspense_minor(database, rem["id"]) == 0
    nothing_owed = payment_intent(dash, rem["id"], status=409)
    assert nothing_owed["type"] == "conflict"

    extra = own_intent(stripe_reset, 500, "USD", rem["id"])
    paid(stripe_reset, extra)
    delivered(client, intent_event(stripe_reset, extra))

    assert money(remittance(dash, rem["id"])) == ("overfunded", 7_747, 8_247, 0, 500)
    assert suspense_minor(database, rem["id"]) == 500
    assert fundings(stripe_admin, rem["id"]) == [
        ("stripe", first, 5_600, 5_600, 0),
        ("stripe", intent["payment_intent_id"], 2_147, 2_147, 0),
        ("stripe", extra, 500, 0, 0),
    ]
    assert [totals(stripe_admin, c["member_id"]) for c in lines] == [
        {"pending_minor": 0, "available_minor": amount, "held_minor": 0} for amount in (4_000, 1_537, 2_210)]
    assert buckets(stripe_admin, lines[2]["member_id"], "available") == (1_105, 663, 442)
    assert balance(database, "cash:stripe") == 8_247
    assert balance(database, "contributor:dash:receivable") == 0
    assert_books_balance(stripe_admin)


# --------------------------------------------------------------------------- duplicates


def test_the_same_payment_intent_succeeded_delivered_twice_funds_once_and_says_duplicate(
        stripe_admin: Caller, dash: Caller, stripe_reset: LocalStripe, database: Database) -> None:
    """localstripe: a real intent paid by card; its payment_intent.succeeded (the intent
    localstripe returns) signed and delivered twice through the test client."""
    client = stripe_admin.client
    rem, lines = batch(dash, "R", OWES_4000, OWES_1537)
    intent = payment_intent(dash, rem["id"])
    paid(stripe_reset, intent["payment_intent_id"])
    event = intent_event(stripe_reset, intent["payment_intent_id"])

    first = delivered(client, event)
    second = delivered(client, event)

    assert (first["event_id"], first["duplicate"], first["outcome"]) == (event["id"], False, "applied")
    assert (second["event_id"], second["duplicate"], second["outcome"]) == (event["id"], True, "applied")
    assert event_count(database) == 1
    assert fundings(stripe_admin, rem["id"]) == [("stripe", intent["payment_intent_id"], 5_537, 5_537, 0)]
    assert money(remittance(dash, rem["id"])) == ("funded", 5_537, 5_537, 0, 0)
    assert [totals(stripe_admin, c["member_id"])["available_minor"] for c in lines] == [4_000, 1_537]
    assert balance(database, "cash:stripe") == 5_537
    assert_books_balance(stripe_admin)


def test_the_same_event_delivered_twice_at_once_funds_once(
        stripe_admin: Caller, dash: Caller, stripe_reset: LocalStripe, stripe_live_server: str,
        database: Database) -> None:
    """localstripe and a live server: a real intent paid by card; its payment_intent.succeeded
    (the intent localstripe returns), signed once, POSTed by two threads released together."""
    rem, lines = batch(dash, "R", OWES_4000, OWES_1537)
    intent = payment_intent(dash, rem["id"])
    paid(stripe_reset, intent["payment_intent_id"])
    body, signature = signed_event(intent_event(stripe_reset, intent["payment_intent_id"]), WEBHOOK_SECRET)
    start = threading.Barrier(2)

    def send() -> requests.Response:
        start.wait(timeout=10)
        return requests.post(f"{stripe_live_server}{WEBHOOK_PATH}", data=body, timeout=60,
                             headers={"Stripe-Signature": signature, "Content-Type": "application/json"})

    with ThreadPoolExecutor(max_workers=2) as pool:
        answers = [future.result() for future in [pool.submit(send) for _ in range(2)]]

    assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
    assert sorted(a.json()["duplicate"] for a in answers) == [False, True]
    assert event_count(database) == 1
    assert fundings(stripe_admin, rem["id"]) == [("stripe", intent["payment_intent_id"], 5_537, 5_537, 0)]
    assert money(remittance(dash, rem["id"])) == ("funded", 5_537, 5_537, 0, 0)
    assert [totals(stripe_admin, c["member_id"])["available_minor"] for c in lines] == [4_000, 1_537]
    assert balance(database, "cash:stripe") == 5_537
    assert_books_balance(stripe_admin)


# --------------------------------------------------------------------------- order of events


def test_refund_success_processing_out_of_order_ends_as_the_refund_says_and_as_the_natural_order_does(
        stripe_admin: Caller, dash: Caller, stripe_reset: LocalStripe, database: Database) -> None:
    """localstripe: two remittances of 55.37 paid by card through our PaymentIntents and fully
    refunded on localstripe. Events built from what localstripe returns: charge.refunded is the
    refunded charge, payment_intent.succeeded the intent as paying returned it,
    payment_intent.processing that intent set back to ``processing`` (localstripe never passes a
    card through processing, nor sends charge events). R1 gets them refund, success,
    processing; R2 processing, success, refund. Each order's movements are compared account by
    account (ids replaced by their roles) and with the trial balance.
    """
    client = stripe_admin.client
    r1, lines1 = batch(dash, "R1", OWES_4000, OWES_1537)
    r2, lines2 = batch(dash, "R2", ("w-3", "dash-4pct", 100_000), ("w-4", "dash-3pct", 51_237))
    events: dict[str, dict[str, dict[str, Any]]] = {}
    for rem in (r1, r2):
        intent_id = payment_intent(dash, rem["id"])["payment_intent_id"]
        at_success = paid(stripe_reset, intent_id)
        refund = stripe_reset.client().v1.refunds.create(params={"payment_intent": intent_id})
        assert (refund.amount, refund.status) == (5_537, "succeeded")
        events[rem["id"]] = {
            "processing": stripe_event("payment_intent.processing", at_status(at_success, "processing")),
            "succeeded": stripe_event("payment_intent.succeeded", at_success),
            "refunded": charge_event(stripe_reset, at_success["latest_charge"]["id"]),
        }
    roles = {r1["id"]: "R", r2["id"]: "R"}
    roles.update({c["member_id"]: f"member{i}" for i, c in enumerate(lines1)})
    roles.update({c["member_id"]: f"member{i}" for i, c in enumerate(lines2)})

    def moved(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
        """Each account's change, its name's ids replaced by their roles."""
        out: dict[str, int] = {}
        for name in sorted(set(before) | set(after)):
            change = after.get(name, 0) - before.get(name, 0)
            if change:
                role = ":".join(roles.get(part, part) for part in name.split(":"))
                out[role] = out.get(role, 0) + change
        return out

    def deliver_in_order(rem: dict[str, Any], *kinds: str) -> list[str]:
        return [delivered(client, events[rem["id"]][kind])["outcome"] for kind in kinds]

    start, trial_start = balances(database), trial_balance(stripe_admin)
    outcomes_1 = deliver_in_order(r1, "refunded", "succeeded", "processing")
    middle, trial_middle = balances(database), trial_balance(stripe_admin)
    outcomes_2 = deliver_in_order(r2, "processing", "succeeded", "refunded")
    end, trial_end = balances(database), trial_balance(stripe_admin)

    assert outcomes_1 == outcomes_2 == ["applied", "applied", "applied"]
    # the refund's ledger: funding returned, receivable reopened, members' available money untouched
    expected = {
        "member:member0:healthcare:available": 2_000, "member:member0:healthcare:pending": -2_000,
        "member:member0:retirement:available": 1_200, "member:member0:retirement:pending": -1_200,
        "member:member0:training:available": 800, "member:member0:training:pending": -800,
        "member:member1:healthcare:available": 769, "member:member1:healthcare:pending": -769,
        "member:member1:retirement:available": 461, "member:member1:retirement:pending": -461,
        "member:member1:training:available": 307, "member:member1:training:pending": -307,
    }
    assert moved(start, middle) == expected
    assert moved(middle, end) == expected
    # received 5,537 (cash, suspense), applied (suspense, receivable, pending, available), refunded (receivable, cash)
    turnover = (5_537 + 2 * 5_537 + 5_537, 5_537 + 2 * 5_537 + 5_537)
    assert (trial_middle[0] - trial_start[0], trial_middle[1] - trial_start[1]) == turnover
    assert (trial_end[0] - trial_middle[0], trial_end[1] - trial_middle[1]) == turnover
    for rem, lines in ((r1, lines1), (r2, lines2)):
        assert money(remittance(dash, rem["id"])) == ("awaiting_funds", 5_537, 0, 5_537, 0)
        assert reopened_minor(database, rem["id"]) == 5_537
        assert suspense_minor(database, rem["id"]) == 0
        assert statuses(dash, lines) == ["available", "available"]
        assert [totals(stripe_admin, c["member_id"]) for c in lines] == [
            {"pending_minor": 0, "available_minor": amount, "held_minor": 0} for amount in (4_000, 1_537)]
        [(source, _, amount, applied, returned)] = fundings(stripe_admin, rem["id"])
        assert (source, amount, applied, returned) == ("stripe", 5_537, 0, 5_537)
        assert transaction_kinds(database, rem["id"]) == [
            "contribution", "funding_applied", "stripe_received", "stripe_refund"]
    assert balance(database, "cash:stripe") == 0  # a full refund: received and given back
    assert balance(database, "contributor:dash:receivable") == 2 * 5_537  # owed again, both remittances
    assert_books_balance(stripe_admin)


# --------------------------------------------------------------------------- payouts


def test_a_payout_of_159_02_reconciles_to_the_cent_with_three_charges_their_fees_and_an_earlier_refund(
        recorded_admin: Caller, recorded_dash: Caller, recorded_stripe: RecordedStripe, database: Database,
        clock: Clock) -> None:
    """RecordedStripe serves balance transactions (with and without ``?payout=``), charges,
    PaymentIntents, a refund and payouts; payments and payouts reach the webhook as signed
    events built in the test.

    July: a 40.00 charge (fee 1.46) paid out as 38.54, reconciled. Then charges of 100.00, 50.00
    and 25.00 (fees 3.20, 1.75, 1.03) and a 10.00 refund of the July charge are paid out as
    159.02 = 96.80 + 48.25 + 23.97 - 10.00: the payout reconciles with no difference.
    """
    client = recorded_admin.client
    r0, lines0 = batch(recorded_dash, "R0", OWES_4000)
    rems = [batch(recorded_dash, f"R{i}", (worker, "dash-4pct", gross))[0]
            for i, (worker, gross) in enumerate((("w-2", 250_000), ("w-3", 125_000), ("w-4", 62_500)), start=1)]
    assert [r["amount_due_minor"] for r in rems] == [10_000, 5_000, 2_500]

    def txn(kind: str, amount: int, fee: int, source: str) -> dict[str, Any]:
        return balance_txn_obj(stripe_id("txn"), kind, amount, fee, "USD", source)

    def stripe_payment(rem_id: str, amount: int, fee: int, refunded: int = 0) -> dict[str, Any]:
        """A paid intent, its charge and its charge's balance transaction, served by the stub."""
        intent_id, charge_id = stripe_id("pi"), stripe_id("ch")
        bt = txn("charge", amount, fee, charge_id)
        charge = charge_obj(charge_id, intent_id, amount, "USD", amount_refunded=refunded, balance_transaction=bt)
        serve(recorded_stripe, f"/v1/charges/{charge_id}", charge)
        serve(recorded_stripe, f"/v1/payment_intents/{intent_id}", payment_intent_obj(
            intent_id, amount, "USD", "succeeded", {"remittance_id": rem_id}, latest_charge=charge))
        return {"intent": intent_id, "charge": charge_id, "bt": bt, "amount": amount, "rem": rem_id}

    def succeeded(payment: dict[str, Any]) -> dict[str, Any]:
        return stripe_event("payment_intent.succeeded", payment_intent_obj(
            payment["intent"], payment["amount"], "USD", "succeeded", {"remittance_id": payment["rem"]},
            latest_charge=payment["charge"]))

    def payout(amount: int) -> tuple[dict[str, Any], dict[str, Any]]:
        payout_id, bt_id = stripe_id("po"), stripe_id("txn")
        obj = payout_obj(payout_id, amount, "USD", "paid", balance_transaction=bt_id)
        serve(recorded_stripe, f"/v1/payouts/{payout_id}", obj)
        return obj, balance_txn_obj(bt_id, "payout", -amount, 0, "USD", payout_id)

    def serve_list(data: list[dict[str, Any]], payout_id: str | None = None) -> None:
        query = {"limit": 100, **({"payout": payout_id} if payout_id else {})}
        serve(recorded_stripe, "/v1/balance_transactions", list_obj(data, "/v1/balance_transactions"), query)

    # July: 40.00 paid (fee 1.46), paid out as 38.54, reconciled
    july = stripe_payment(r0["id"], 4_000, 146)
    delivered(client, succeeded(july))
    po_july, po_july_bt = payout(3_854)
    serve_list([po_july_bt, july["bt"]], po_july["id"])
    serve_list([po_july_bt, july["bt"]])
    clock.now = at("2026-07-20T06:00")
    july_report = reconcile(recorded_admin)
    assert (july_report["ok"], july_report["exceptions"]) == (True, [])
    assert (july_report["stripe"]["transactions_read"], july_report["stripe"]["payouts_reconciled"]) == (2, 1)
    assert (balance(database, "fees"), balance(database, "cash:bank"), balance(database, "cash:stripe")) == (
        146, 3_854, 0)

    # then: three charges paid by webhook, a refund of the July charge, and the 159.02 payout
    clock.now = at("2026-07-27T06:00")
    charges = [stripe_payment(r["id"], r["amount_due_minor"], fee) for r, fee in zip(rems, (320, 175, 103),
                                                                                       strict=True)]
    for payment in charges:
        delivered(client, succeeded(payment))
    refund_id = stripe_id("re")
    refund_bt = txn("refund", -1_000, 0, refund_id)
    serve(recorded_stripe, f"/v1/refunds/{refund_id}", refund_obj(
        refund_id, july["charge"], july["intent"], 1_000, "USD", refund_bt["id"]))
    july_refunded = charge_obj(july["charge"], july["intent"], 4_000, "USD", amount_refunded=1_000,
                                     balance_transaction=july["bt"])
    serve(recorded_stripe, f"/v1/charges/{july['charge']}", july_refunded)
    serve(recorded_stripe, f"/v1/payment_intents/{july['intent']}", payment_intent_obj(
        july["intent"], 4_000, "USD", "succeeded", {"remittance_id": r0["id"]}, latest_charge=july_refunded))
    po, po_bt = payout(15_902)
    covered = [po_bt, refund_bt, *(p["bt"] for p in reversed(charges))]
    serve_list(covered, po["id"])
    serve_list([*covered, po_july_bt, july["bt"]])
    bank_before = balance(database, "cash:bank")

    assert delivered(client, stripe_event("payout.paid", po))["outcome"] == "applied"
    assert balance(database, "cash:bank") - bank_before == 15_902

    clock.now = at("2026-07-28T06:00")
    fees_before = balance(database, "fees")
    report = reconcile(recorded_admin)

    assert not [e for e in report["exceptions"] if e["type"] == "payout_difference"]
    assert report["exceptions"] == [{
        "type": "remittance_partially_funded", "remittance_id": r0["id"], "contributor_id": "dash",
        "member_id": None, "currency": "USD", "status": "partially_funded", "amount_due_minor": 4_000,
        "amount_funded_minor": 3_000, "short_minor": 1_000, "credit_minor": 0, "reopened_minor": 1_000,
        "due_date": "2026-08-15"}]
    assert report["ok"] is True
    assert {k: report["stripe"][k] for k in ("cursor_before", "cursor_after", "transactions_read",
                                             "payouts_reconciled")} == {
        "cursor_before": po_july_bt["id"], "cursor_after": po_bt["id"], "transactions_read": 5,
        "payouts_reconciled": 1}
    row = payout_row(database, po["id"])
    assert (row.status, row.amount_minor, row.transactions_count, row.transactions_net_minor,
            row.difference_minor) == ("paid", 15_902, 4, 15_902, 0)
    assert row.reconciled_at is not None
    assert balance(database, "fees") - fees_before == 598  # 3.20 + 1.75 + 1.03, each once
    assert (balance(database, "fees"), balance(database, "cash:bank"), balance(database, "cash:stripe")) == (
        146 + 598, 3_854 + 15_902, 0)
    assert activity(report) == {
        "reopened": (None, 1_000), "stripe_fee": (3, 598), "stripe_payout": (1, 15_902),
        "stripe_received": (3, 17_500), "stripe_refund": (1, 1_000)}
    [usd] = report["totals"]
    assert usd["ledger"] == usd["stripe"] == {
        "charges": 21_500, "refunds": -1_000, "disputes": 0, "fees": -744, "payouts": -19_756, "other": 0,
        "balance": 0}
    assert set(usd["difference"].values()) == {0}
    assert money(remittance(recorded_admin, r0["id"])) == ("partially_funded", 4_000, 3_000, 1_000, 0)
    assert [money(remittance(recorded_admin, r["id"]))[0] for r in rems] == ["funded"] * 3
    assert totals(recorded_admin, lines0[0]["member_id"])["available_minor"] == 4_000  # never taken back
    assert_books_balance(recorded_admin)


# --------------------------------------------------------------------------- lost webhook


def test_a_payment_whose_webhook_was_lost_is_booked_once_by_reconciliation(
        stripe_admin: Caller, dash: Caller, stripe_reset: LocalStripe, database: Database, clock: Clock) -> None:
    """localstripe: a real intent paid by card whose event is never delivered; reconciliation
    reads localstripe's balance transactions (and its charge and intent); the late event, when
    it finally comes, is the intent localstripe returns."""
    rem, lines = batch(dash, "R", OWES_4000, OWES_1537)
    intent = payment_intent(dash, rem["id"])
    paid(stripe_reset, intent["payment_intent_id"])
    assert money(remittance(dash, rem["id"])) == ("awaiting_funds", 5_537, 0, 5_537, 0)

    clock.now = at("2026-07-16T06:00")
    first = reconcile(stripe_admin)

    assert (first["stripe"]["transactions_read"], first["ok"], first["exceptions"]) == (1, True, [])
    assert money(remittance(dash, rem["id"])) == ("funded", 5_537, 5_537, 0, 0)
    assert statuses(dash, lines) == ["available", "available"]
    assert fundings(stripe_admin, rem["id"]) == [("stripe", intent["payment_intent_id"], 5_537, 5_537, 0)]
    assert activity(first) == {"stripe_received": (1, 5_537)}
    booked = balances(database)
    assert (booked["cash:stripe"], booked[f"suspense:{rem['id']}"], booked["contributor:dash:receivable"]) == (
        5_537, 0, 0)

    clock.now = at("2026-07-17T06:00")
    second = reconcile(stripe_admin)

    assert second["stripe"]["transactions_read"] == 0
    assert second["stripe"]["cursor_before"] == first["stripe"]["cursor_after"]
    assert (second["ok"], second["exceptions"], second["activity"]) == (True, [], [])
    assert balances(database) == booked
    assert len(fundings(stripe_admin, rem["id"])) == 1

    late = delivered(stripe_admin.client, intent_event(stripe_reset, intent["payment_intent_id"]))

    assert (late["duplicate"], late["outcome"]) == (False, "applied")
    assert balances(database) == booked
    assert money(remittance(dash, rem["id"])) == ("funded", 5_537, 5_537, 0, 0)
    assert_books_balance(stripe_admin)


# --------------------------------------------------------------------------- disputes


def test_a_dispute_lost_after_the_month_was_reconciled_reopens_the_receivable_in_the_next_report_only(
        stripe_admin: Caller, dash: Caller, stripe_reset: LocalStripe, database: Database, clock: Clock) -> None:
    """localstripe for the two payments (real intents, events built from what it returns) and
    for reconciliation's reads; the dispute events (localstripe has no disputes) are signed
    payloads built in the test: the dispute carries its balance transaction (-21.47, fee 15.00)."""
    client = stripe_admin.client
    rem, lines = batch(dash, "R", OWES_4000, OWES_1537, OWES_2210)
    part = own_intent(stripe_reset, 5_600, "USD", rem["id"])
    paid(stripe_reset, part)
    delivered(client, intent_event(stripe_reset, part))
    rest = payment_intent(dash, rem["id"])["payment_intent_id"]
    charge_id = paid(stripe_reset, rest)["latest_charge"]["id"]
    delivered(client, intent_event(stripe_reset, rest))
    assert money(remittance(dash, rem["id"])) == ("funded", 7_747, 7_747, 0, 0)

    clock.now = at("2026-08-01T00:30")
    july = reconcile(stripe_admin)
    assert (july["ok"], july["exceptions"], july["stripe"]["transactions_read"]) == (True, [], 2)
    july_bytes = stripe_admin.get(f"/v1/reconciliations/{july['id']}").data
    members = [c["member_id"] for c in lines]
    members_before = member_balances(stripe_admin, members)

    clock.now = at("2026-08-03T10:00")
    dispute_id = stripe_id("du")
    taken = [balance_txn_obj(stripe_id("txn"), "adjustment", -2_147, 1_500, "USD", dispute_id)]
    created = delivered(client, stripe_event("charge.dispute.created", dispute_obj(
        dispute_id, charge_id, rest, 2_147, "USD", "needs_response", taken)))
    closed = delivered(client, stripe_event("charge.dispute.closed", dispute_obj(
        dispute_id, charge_id, rest, 2_147, "USD", "lost", taken)))
    assert (created["outcome"], closed["outcome"]) == ("applied", "applied")

    clock.now = at("2026-08-04T00:30")
    august = reconcile(stripe_admin)

    assert stripe_admin.get(f"/v1/reconciliations/{july['id']}").data == july_bytes
    assert activity(august) == {"reopened": (None, 2_147), "stripe_dispute": (1, 2_147), "stripe_fee": (1, 1_500)}
    [status] = [s for s in august["remittance_statuses"] if s["remittance_id"] == rem["id"]]
    assert (status["status"], status["short_minor"], status["reopened_minor"]) == ("partially_funded", 2_147, 2_147)
    assert [e["type"] for e in august["exceptions"]] == ["remittance_partially_funded"]
    assert august["ok"] is True
    assert money(remittance(dash, rem["id"])) == ("partially_funded", 7_747, 5_600, 2_147, 0)
    assert statuses(dash, lines) == ["available", "available", "available"]
    assert member_balances(stripe_admin, members) == members_before  # members' money is never taken back
    assert (balance(database, "fees"), balance(database, "cash:stripe")) == (1_500, 7_747 - 2_147 - 1_500)
    assert balance(database, "contributor:dash:receivable") == 2_147
    assert_books_balance(stripe_admin)


# --------------------------------------------------------------------------- currencies


def test_jpy_is_charged_exactly_and_kwd_rounded_up_to_10_fils_the_extra_5_fils_being_credit(
        stripe_app: Flask, stripe_admin: Caller, stripe_reset: LocalStripe, database: Database) -> None:
    """localstripe: real JPY and KWD intents through our API, read back from localstripe, paid
    by card; the events are the intents localstripe returns."""
    tokyo = platform(stripe_app, stripe_admin, "tokyo", "JPY", **{"tokyo-4pct": {}})
    kuwait = platform(stripe_app, stripe_admin, "kuwait", "KWD", **{"kuwait-4pct": {}})
    enroll(tokyo, "t-1")
    enroll(kuwait, "k-1")
    jpy = remit_in(tokyo, "T", "JPY", [line("T:0", "t-1", "tokyo-4pct", 123_450, currency="JPY")])  # 4,938 yen
    kwd = remit_in(kuwait, "K", "KWD", [line("K:0", "k-1", "kuwait-4pct", 308_625, currency="KWD")])  # 12.345 KWD
    assert money(jpy) == ("awaiting_funds", 4_938, 0, 4_938, 0)
    assert money(kwd) == ("awaiting_funds", 12_345, 0, 12_345, 0)

    yen = payment_intent(tokyo, jpy["id"])
    fils = payment_intent(kuwait, kwd["id"])
    read = stripe_reset.client().v1.payment_intents.retrieve

    assert (yen["amount_minor"], yen["currency"]) == (4_938, "JPY")
    assert (fils["amount_minor"], fils["currency"]) == (12_350, "KWD")
    assert (read(yen["payment_intent_id"]).amount, read(yen["payment_intent_id"]).currency) == (4_938, "jpy")
    assert (read(fils["payment_intent_id"]).amount, read(fils["payment_intent_id"]).currency) == (12_350, "kwd")

    for intent in (yen, fils):
        paid(stripe_reset, intent["payment_intent_id"])
        delivered(stripe_admin.client, intent_event(stripe_reset, intent["payment_intent_id"]))

    assert money(remittance(tokyo, jpy["id"])) == ("funded", 4_938, 4_938, 0, 0)
    assert money(remittance(kuwait, kwd["id"])) == ("overfunded", 12_345, 12_350, 0, 5)
    assert suspense_minor(database, kwd["id"], "KWD") == 5
    assert (balance(database, "cash:stripe", "JPY"), balance(database, "cash:stripe", "KWD")) == (4_938, 12_350)
    for caller, rem, currency, amount in ((tokyo, jpy, "JPY", 4_938), (kuwait, kwd, "KWD", 12_345)):
        [owed] = get(caller, f"/v1/remittances/{rem['id']}/contributions")["data"]
        body = get(stripe_admin, f"/v1/members/{owed['member_id']}/balances?currency={currency}")
        assert owed["status"] == "available"
        assert body["total"] == {"pending_minor": 0, "available_minor": amount, "held_minor": 0}
        assert tuple(body["buckets"][b]["available_minor"] for b in ("healthcare", "retirement", "training")) == (
            split(owed))
    assert_books_balance(stripe_admin)


# --------------------------------------------------------------------------- self contributions


def test_a_self_contribution_is_pending_until_its_payment_intent_succeeds_then_available(
        stripe_app: Flask, stripe_admin: Caller, stripe_reset: LocalStripe, database: Database) -> None:
    """localstripe: the member's PaymentIntent, created by our API, read back and paid by card;
    its payment_intent.succeeded is the intent localstripe returns."""
    created_member = stripe_admin.post("/v1/members", {"display_name": "Ada"})
    assert created_member.status_code == 201, created_member.json
    member_id = created_member.json["id"]
    me = new_caller(stripe_app, stripe_admin, "member", member_id=member_id)
    body = {"external_id": "self-2026-07", "amount_minor": 25_000, "currency": "USD",
            "allocation": {"healthcare": 5000, "retirement": 3000, "training": 2000}}

    first = me.post(f"/v1/members/{member_id}/contributions", body)
    again = me.post(f"/v1/members/{member_id}/contributions", body)

    assert first.status_code == 201, first.json
    assert again.status_code == 200, again.json
    assert (first.json["status"], first.json["amount_minor"], split(first.json)) == (
        "pending", 25_000, (12_500, 7_500, 5_000))
    assert (again.json["id"], again.json["payment_intent_id"]) == (first.json["id"], first.json["payment_intent_id"])
    assert first.json["client_secret"].startswith(f"{first.json['payment_intent_id']}_secret_")
    assert totals(stripe_admin, member_id) == {"pending_minor": 25_000, "available_minor": 0, "held_minor": 0}
    intent_id = first.json["payment_intent_id"]
    at_stripe = stripe_reset.client().v1.payment_intents.retrieve(intent_id)
    assert (at_stripe.amount, at_stripe.currency, at_stripe.status) == (25_000, "usd", "requires_payment_method")
    assert at_stripe.metadata.to_dict() == {"remittance_id": first.json["remittance_id"],
                                            "contribution_id": first.json["id"], "member_id": member_id}

    paid(stripe_reset, intent_id)
    answer = delivered(stripe_admin.client, intent_event(stripe_reset, intent_id))

    assert (answer["outcome"], answer["duplicate"]) == ("applied", False)
    [listed] = get(me, f"/v1/members/{member_id}/contributions")["data"]
    assert (listed["id"], listed["status"]) == (first.json["id"], "available")
    assert buckets(me, member_id, "available") == (12_500, 7_500, 5_000)
    assert totals(me, member_id) == {"pending_minor": 0, "available_minor": 25_000, "held_minor": 0}
    assert money(remittance(stripe_admin, first.json["remittance_id"])) == ("open", 25_000, 25_000, 0, 0)
    assert balance(database, "cash:stripe") == 25_000
    assert_books_balance(stripe_admin)


# --------------------------------------------------------------------------- signatures


def test_a_bad_signature_is_refused_with_400_and_nothing_is_stored(
        recorded_admin: Caller, recorded_dash: Caller, recorded_stripe: RecordedStripe, database: Database) -> None:
    """Signed event payloads built in the test (a payment_intent.succeeded from the builder);
    RecordedStripe records nothing and must be asked nothing."""
    client = recorded_admin.client
    rem, _ = batch(recorded_dash, "R", OWES_4000)
    event = stripe_event("payment_intent.succeeded", payment_intent_obj(
        stripe_id("pi"), 4_000, "USD", "succeeded", {"remittance_id": rem["id"]}))
    body, signature = signed_event(event, WEBHOOK_SECRET)
    changed = body.replace(b'"amount": 4000', b'"amount": 9000')
    assert changed != body

    wrong_secret = deliver(client, event, secret="whsec_not_ours")
    tampered = client.post(WEBHOOK_PATH, data=changed,
                           headers={"Stripe-Signature": signature, "Content-Type": "application/json"})
    unsigned = client.post(WEBHOOK_PATH, data=body, headers={"Content-Type": "application/json"})

    for refused in (wrong_secret, tampered, unsigned):
        assert (refused.status_code, refused.json["type"]) == (400, "validation_error"), refused.json
    assert event_count(database) == 0
    assert money(remittance(recorded_dash, rem["id"])) == ("awaiting_funds", 4_000, 0, 4_000, 0)
    assert balance(database, "cash:stripe") == 0
    assert recorded_stripe.requests == []

    accepted = delivered(client, event)  # the same event, signed with our secret

    assert (accepted["outcome"], event_count(database)) == ("applied", 1)
    assert money(remittance(recorded_dash, rem["id"])) == ("funded", 4_000, 4_000, 0, 0)
    assert_books_balance(recorded_admin)


def test_a_signature_301_seconds_old_is_refused_with_400_and_one_290_seconds_old_is_accepted(
        recorded_admin: Caller, recorded_dash: Caller, database: Database) -> None:
    """Signed event payloads built in the test, signed 301 s and 290 s ago (Stripe's tolerance: 300 s)."""
    client = recorded_admin.client
    rem, _ = batch(recorded_dash, "R", OWES_4000)
    event = stripe_event("payment_intent.succeeded", payment_intent_obj(
        stripe_id("pi"), 4_000, "USD", "succeeded", {"remittance_id": rem["id"]}))

    stale = deliver(client, event, timestamp=int(time.time()) - 301)

    assert (stale.status_code, stale.json["type"]) == (400, "validation_error"), stale.json
    assert event_count(database) == 0
    assert money(remittance(recorded_dash, rem["id"])) == ("awaiting_funds", 4_000, 0, 4_000, 0)

    recent = deliver(client, event, timestamp=int(time.time()) - 290)

    assert recent.status_code == 200, recent.json
    assert (recent.json["duplicate"], event_count(database)) == (False, 1)
    assert money(remittance(recorded_dash, rem["id"])) == ("funded", 4_000, 4_000, 0, 0)
    assert_books_balance(recorded_admin)


def test_asking_again_after_paying_books_the_payment_instead_of_a_second_intent(
        stripe_admin: Caller, dash: Caller, stripe_reset: LocalStripe, database: Database) -> None:
    """localstripe, no webhook delivered: the contributor pays our intent, then asks for an
    intent again before the event arrives. The paid intent is read from Stripe and booked
    (once); nothing is owed, so 409 and no second charge. The late event then adds nothing."""
    rem, _ = batch(dash, "R", OWES_4000)
    intent = payment_intent(dash, rem["id"])
    paid(stripe_reset, intent["payment_intent_id"])

    again = payment_intent(dash, rem["id"], status=409)
    late = delivered(stripe_admin.client, intent_event(stripe_reset, intent["payment_intent_id"]))

    assert again["type"] == "conflict"
    assert money(remittance(dash, rem["id"])) == ("funded", 4_000, 4_000, 0, 0)
    assert late["duplicate"] is False and late["outcome"] == "applied"
    assert len(stripe_admin.get(f"/v1/remittances/{rem['id']}/fundings").json["data"]) == 1
    assert len(stripe_reset.client().v1.payment_intents.list().data) == 1
