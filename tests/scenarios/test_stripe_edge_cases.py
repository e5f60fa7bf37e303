"""Stripe edge cases a review found: refunds and disputes together, disputes won on money moved
elsewhere, ISK's scale, fees that are balance transactions of their own.

DOMAIN.md "Funding": a refund or lost dispute reopens what the payer owes and never takes a
member's available money back; DESIGN.md "Stripe": events in any order end in one ledger;
``cash:stripe`` follows Stripe's balance. Every test here uses event payloads built and
signed in the test (localstripe has no disputes) on the ``recorded_app`` (no Stripe reads).
"""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from jobs.reconciliation import book_balance_transaction
from ledger.db import Database
from ledger.payments import balance_transaction_from, to_stripe_amount
from ledger.services.reconciliation import build_report
from ledger.services.reports import verify
from ledger.services.stripe_settlement import apply_event
from ledger.tables import Funding
from tests.conftest import Caller, new_caller
from tests.scenarios.helpers import enroll, get, line, make_contributor, make_plan, platform, remit
from tests.scenarios.stripe_helpers import balance, balances, delivered, remit_in, reopened_minor
from tests.stripe_support import (
    balance_txn_obj,
    charge_obj,
    dispute_obj,
    payment_intent_obj,
    stripe_event,
    stripe_id,
)


def owing_4000(app: Flask, admin: Caller) -> dict[str, Any]:
    """A batch remittance of one 4,000 contribution (4% of $1,000.00)."""
    dash = platform(app, admin, "dash", **{"dash-4pct": {}})
    enroll(dash, "w-1")
    return remit(dash, "R", [line("R:0", "w-1", "dash-4pct", 100_000)])


def checks_hold(database: Database) -> None:
    bad = [c for c in verify(database) if not c.ok]
    assert not bad, bad


def paid_event(pi: str, ch: str, remittance_id: str | None, amount: int = 4000) -> dict[str, Any]:
    metadata = {"remittance_id": remittance_id} if remittance_id else {}
    return stripe_event("payment_intent.succeeded", payment_intent_obj(
        pi, amount, "usd", "succeeded", metadata, latest_charge=charge_obj(ch, pi, amount, "usd")))


def test_a_dispute_won_on_money_applied_elsewhere_returns_to_that_remittance(
        recorded_app: Flask, recorded_admin: Caller, database: Database) -> None:
    """Unmatched money (4,000) applied to R, disputed with a 15.00 fee (R reopened 4,000), then
    won: the 4,000 comes back into R's suspense and pays what was reopened. Stripe's balance:
    +4,000 - 4,000 - 1,500 + 4,000 = 2,500, and so is ``cash:stripe``."""
    rem = owing_4000(recorded_app, recorded_admin)
    pi, ch, dp = stripe_id("pi"), stripe_id("ch"), stripe_id("dp")
    delivered(recorded_admin.client, paid_event(pi, ch, None))
    funding_id = database.read(lambda s: s.scalar(select(Funding.id)))
    assert recorded_admin.post(f"/v1/fundings/{funding_id}/apply", {"remittance_id": rem["id"]}).status_code == 200
    lost = balance_txn_obj(stripe_id("txn"), "adjustment", -4000, 1500, "usd", dp)
    delivered(recorded_admin.client, stripe_event("charge.dispute.created",
                                                  dispute_obj(dp, ch, pi, 4000, "usd", "needs_response", [lost])))
    assert (reopened_minor(database, rem["id"]), get(recorded_admin, f"/v1/remittances/{rem['id']}")["status"]) \
        == (4000, "awaiting_funds")

    won = balance_txn_obj(stripe_id("txn"), "adjustment", 4000, 0, "usd", dp)
    delivered(recorded_admin.client, stripe_event("charge.dispute.closed",
                                                  dispute_obj(dp, ch, pi, 4000, "usd", "won", [lost, won])))

    body = get(recorded_admin, f"/v1/remittances/{rem['id']}")
    assert (body["status"], body["amount_funded_minor"], body["reopened_minor"]) == ("funded", 4000, 0)
    assert (balance(database, "cash:stripe"), balance(database, "fees")) == (2500, 1500)
    checks_hold(database)


@pytest.mark.parametrize("order", ["refund, then dispute won", "dispute won, then refund"])
def test_a_full_refund_and_a_dispute_won_end_the_same_whatever_the_order(
        recorded_app: Flask, recorded_admin: Caller, database: Database, order: str) -> None:
    """4,000 received, refunded in full, disputed and won: Stripe's balance is back to 0
    (+4,000 - 4,000 - 4,000 + 4,000), the payer owes the 4,000 again (reopened), members keep
    their available money; both orders alike."""
    rem = owing_4000(recorded_app, recorded_admin)
    pi, ch, dp = stripe_id("pi"), stripe_id("ch"), stripe_id("dp")
    delivered(recorded_admin.client, paid_event(pi, ch, rem["id"]))
    refund = stripe_event("charge.refunded", charge_obj(ch, pi, 4000, "usd", amount_refunded=4000))
    bts = [balance_txn_obj(stripe_id("txn"), "adjustment", -4000, 0, "usd", dp),
           balance_txn_obj(stripe_id("txn"), "adjustment", 4000, 0, "usd", dp)]
    dispute = stripe_event("charge.dispute.closed", dispute_obj(dp, ch, pi, 4000, "usd", "won", bts))

    for event in ([refund, dispute] if order.startswith("refund") else [dispute, refund]):
        delivered(recorded_admin.client, event)

    body = get(recorded_admin, f"/v1/remittances/{rem['id']}")
    assert (body["status"], body["short_minor"], body["reopened_minor"]) == ("awaiting_funds", 4000, 4000)
    held = balances(database)
    assert (held["cash:stripe"], held.get("stripe_losses", 0), held["contributor:dash:receivable"]) == (0, 0, 4000)
    assert sum(v for k, v in held.items() if k.endswith(":available")) == 4000
    checks_hold(database)


def test_a_dispute_lost_on_top_of_a_full_refund_is_the_fund_s_loss_not_the_payer_s_debt(
        recorded_app: Flask, recorded_admin: Caller, database: Database) -> None:
    """Stripe took 8,000 back for a 4,000 payment (refund, then a lost dispute): the payer owes
    its 4,000 again; the other 4,000 is booked to ``stripe_losses`` and reported, and
    ``cash:stripe`` follows Stripe to -4,000."""
    rem = owing_4000(recorded_app, recorded_admin)
    pi, ch, dp = stripe_id("pi"), stripe_id("ch"), stripe_id("dp")
    delivered(recorded_admin.client, paid_event(pi, ch, rem["id"]))
    delivered(recorded_admin.client, stripe_event("charge.refunded",
                                                  charge_obj(ch, pi, 4000, "usd", amount_refunded=4000)))
    lost = balance_txn_obj(stripe_id("txn"), "adjustment", -4000, 0, "usd", dp)
    delivered(recorded_admin.client, stripe_event("charge.dispute.closed",
                                                  dispute_obj(dp, ch, pi, 4000, "usd", "lost", [lost])))

    held = balances(database)
    assert (held["cash:stripe"], held["stripe_losses"], reopened_minor(database, rem["id"])) == (-4000, 4000, 4000)
    now = datetime.now(UTC)
    report = database.read(lambda s: build_report(s, now.date(), None, now, {"configured": False}))
    losses = [e for e in report["exceptions"] if e["type"] == "stripe_loss"]
    assert [(e["payment_intent_id"], e["amount_minor"]) for e in losses] == [(pi, 4000)]
    checks_hold(database)


@pytest.mark.parametrize(("refunded", "disputed", "won"), [
    (1000, 3000, False), (1000, 3000, True), (4000, 4000, True), (4000, 4000, False), (2500, 2500, True)])
def test_every_order_of_success_refund_and_dispute_events_ends_in_one_ledger(
        recorded_app: Flask, recorded_admin: Caller, database: Database, refunded: int, disputed: int,
        won: bool) -> None:
    """Eight orders of the same four events (success, refund, dispute opened, dispute closed)
    move the same accounts by the same amounts and reopen the same debt."""
    dash = platform(recorded_app, recorded_admin, "dash", **{"dash-4pct": {}})
    enroll(dash, "w-1")
    outcomes: dict[Any, list[tuple[int, ...]]] = {}
    orders = list(itertools.permutations(range(4)))
    random.Random(1).shuffle(orders)
    for k, order in enumerate(orders[:8]):
        rem = remit(dash, f"R{k}", [line(f"R{k}:0", "w-1", "dash-4pct", 100_000)])
        pi, ch, dp = stripe_id("pi"), stripe_id("ch"), stripe_id("dp")
        lost = balance_txn_obj(stripe_id("txn"), "adjustment", -disputed, 0, "usd", dp)
        bts = [lost] + ([balance_txn_obj(stripe_id("txn"), "adjustment", disputed, 0, "usd", dp)] if won else [])
        events = [paid_event(pi, ch, rem["id"]),
                  stripe_event("charge.refunded", charge_obj(ch, pi, 4000, "usd", amount_refunded=refunded)),
                  stripe_event("charge.dispute.created", dispute_obj(dp, ch, pi, disputed, "usd", "needs_response",
                                                                     [lost])),
                  stripe_event("charge.dispute.closed", dispute_obj(dp, ch, pi, disputed, "usd",
                                                                    "won" if won else "lost", bts))]
        before = balances(database)
        for i in order:
            database.transaction(lambda s, e=events[i]: apply_event(s, e, datetime.now(UTC)))
        after = balances(database)
        moved = {("member:" + n.split(":")[-1] if n.startswith("member") else
                  "suspense" if n.startswith("suspense") else n): after.get(n, 0) - before.get(n, 0)
                 for n in after if after.get(n, 0) != before.get(n, 0)}
        key = (tuple(sorted(moved.items())), reopened_minor(database, rem["id"]))
        outcomes.setdefault(key, []).append(order)
    assert len(outcomes) == 1, outcomes
    checks_hold(database)


def test_isk_is_sent_to_stripe_as_if_it_had_two_decimals_and_read_back_in_kronur(
        recorded_app: Flask, recorded_admin: Caller, database: Database) -> None:
    """Stripe's currency docs: ISK amounts are sent as two-decimal (in multiples of 100), while
    ISO 4217 (and the ledger) has no decimals: 4,000 kr owed is Stripe's 400,000, and a
    payment of 400,000 funds exactly 4,000 kr."""
    make_contributor(recorded_admin, "ice", currency="ISK")
    make_plan(recorded_admin, "ice", "ice-4pct")
    ice = new_caller(recorded_app, recorded_admin, "platform", contributor_id="ice")
    enroll(ice, "w-1")
    rem = remit_in(ice, "R", "ISK", [line("R:0", "w-1", "ice-4pct", 100_000, currency="ISK")])
    pi, ch = stripe_id("pi"), stripe_id("ch")

    delivered(recorded_admin.client, stripe_event("payment_intent.succeeded", payment_intent_obj(
        pi, 400_000, "isk", "succeeded", {"remittance_id": rem["id"]},
        latest_charge=charge_obj(ch, pi, 400_000, "isk"))))

    body = get(recorded_admin, f"/v1/remittances/{rem['id']}")
    assert (rem["amount_due_minor"], to_stripe_amount(rem["amount_due_minor"], "ISK")) == (4000, 400_000)
    assert (body["status"], body["amount_funded_minor"], balance(database, "cash:stripe", "ISK")) == \
        ("funded", 4000, 4000)


def test_a_stripe_fee_transaction_is_booked_to_fees_once_and_reconciles(database: Database) -> None:
    """A ``stripe_fee`` balance transaction carries its cost in ``amount`` (-500, fee 0): 500
    to ``fees`` from ``cash:stripe``, once, and the report shows no difference."""
    bt = balance_transaction_from(balance_txn_obj(stripe_id("txn"), "stripe_fee", -500, 0, "usd", None))
    for _ in range(2):
        book_balance_transaction(database, None, lambda: datetime.now(UTC), bt)  # type: ignore[arg-type]

    assert (balance(database, "cash:stripe"), balance(database, "fees")) == (-500, 500)
    now = datetime.now(UTC)
    report = database.read(lambda s: build_report(s, now.date(), None, now, {"configured": True}))
    (usd,) = report["totals"]
    assert (usd["ledger"]["fees"], usd["stripe"]["fees"], report["ok"]) == (-500, -500, True)
    assert all(v == 0 for v in usd["difference"].values())
