"""Reconciliation: read what Stripe reports, book what the webhooks missed, store a report.

DOMAIN.md "Reconciliation"; DESIGN.md "Jobs" (a plain function taking the database, a
clock and the payments gateway). Steps:
1. Stripe's balance transactions since the last run's cursor, newest first a page at a
   time, then applied oldest first: each one's charge, refund, dispute or payout is
   retrieved and recorded (a payment whose webhook was lost is booked here, once), and
   its fee is booked to ``fees`` exactly once.
2. Each paid payout not yet reconciled: its balance transactions (``?payout=``) are read
   and summed; the payout reconciles when their net equals its amount to the cent.
3. The report (``ledger.services.reconciliation.build_report``), stored and never changed.
Running it twice books nothing the second time: every booking is keyed by a Stripe id.
Without a gateway it still reports remittances, unmatched money and the ledger's checks.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlmodel import col

from ledger.db import Database
from ledger.payments import BalanceTransactionInfo, PaymentsGateway
from ledger.services import reconciliation
from ledger.services.stripe_settlement import (
    FEE_TYPES,
    record_balance_transaction,
    record_charge,
    record_dispute,
    record_payment_intent,
    record_payout,
)
from ledger.tables import Reconciliation, StripeBalanceTransaction, StripePayout

PAGE = 100
#: how far before the cursor's time a run reads again (same-second transactions list in any order)
OVERLAP = timedelta(minutes=5)
#: balance transaction types booked through a charge (Stripe: ``charge``; ``payment`` for some methods)
CHARGE_TYPES = frozenset({"charge", "payment"})
REFUND_TYPES = frozenset({"refund", "payment_refund", "payment_failure_refund"})
PAYOUT_TYPES = frozenset({"payout", "payout_cancel", "payout_failure"})


def run_reconciliation(db: Database, clock: Callable[[], datetime], gateway: PaymentsGateway | None,
                       today: date) -> Reconciliation:
    """Reconcile now; returns the stored report row.

    ``clock`` gives aware UTC instants; ``today`` is the business date statuses are read
    on. Raises PaymentsUnavailableError when Stripe cannot be read (nothing is stored
    then; whatever was booked before the failure stays booked, exactly once).
    """
    started = clock()
    since = reconciliation.previous_finished_at(db)
    stripe: dict[str, Any] = {"configured": gateway is not None}
    cursor = reconciliation.last_stripe_cursor(db)
    if gateway is not None:
        stripe.update(sync_stripe(db, gateway, clock, cursor))
        cursor = stripe["cursor_after"]
    finished = clock()
    report = db.read(lambda s: reconciliation.build_report(s, today, since, finished, stripe), snapshot=True)
    return reconciliation.store_report(db, report, cursor, started, finished)


def sync_stripe(db: Database, gateway: PaymentsGateway, clock: Callable[[], datetime],
                cursor: str | None) -> dict[str, Any]:
    """Read and book Stripe's balance transactions newer than ``cursor``, then reconcile payouts.

    Pages newest first until a transaction older than the cursor's by ``OVERLAP`` (or the
    cursor itself, when its time is unknown): transactions created in the same second can
    be listed in any order, so a few already booked are read again and skipped.
    """
    cutoff = None
    if cursor is not None:
        created = db.read(lambda s: s.scalar(select(col(StripeBalanceTransaction.created)).where(
            col(StripeBalanceTransaction.id) == cursor)))
        cutoff = created - OVERLAP if created is not None else None
    new: list[BalanceTransactionInfo] = []
    newest: str | None = None
    starting_after: str | None = None
    reached = False
    while not reached:
        page = gateway.list_balance_transactions(limit=PAGE, starting_after=starting_after)
        booked = db.read(lambda s, ids=[bt.id for bt in page.data]: _matched_ids(s, ids))  # type: ignore[misc]
        for bt in page.data:
            newest = newest or bt.id
            if (cutoff is None and bt.id == cursor) or (cutoff is not None and bt.created is not None
                                                        and bt.created < cutoff):
                reached = True
                break
            if bt.id not in booked:
                new.append(bt)
        if not page.has_more or not page.data:
            break
        starting_after = page.data[-1].id
    for bt in reversed(new):
        book_balance_transaction(db, gateway, clock, bt)
    payouts = reconcile_payouts(db, gateway, clock)
    return {"cursor_before": cursor, "cursor_after": newest or cursor,
            "transactions_read": len(new), "payouts_reconciled": payouts}


def book_balance_transaction(db: Database, gateway: PaymentsGateway, clock: Callable[[], datetime],
                             bt: BalanceTransactionInfo, payout_id: str | None = None) -> None:
    """Retrieve what ``bt`` moved (outside any database transaction), then book it and its fee."""
    source = bt.source_id or ""
    intent = charge = dispute = payout = None
    if bt.type in CHARGE_TYPES and source.startswith(("ch_", "py_")):
        charge = gateway.retrieve_charge(source)
    elif bt.type in REFUND_TYPES and source.startswith(("re_", "pyr_")):
        refund = gateway.retrieve_refund(source)
        charge = gateway.retrieve_charge(refund.charge_id) if refund.charge_id else None
    elif source.startswith(("dp_", "du_")):
        dispute = gateway.retrieve_dispute(source)
        charge = gateway.retrieve_charge(dispute.charge_id) if dispute.charge_id else None
    elif bt.type in PAYOUT_TYPES and source.startswith("po_"):
        payout = gateway.retrieve_payout(source)
    if charge is not None and charge.payment_intent_id:
        intent = gateway.retrieve_payment_intent(charge.payment_intent_id)

    def run(session: Session) -> None:
        now = clock()
        row = record_balance_transaction(session, bt, now, payout_id)
        matched = None
        if intent is not None:
            matched = record_payment_intent(session, intent, now).id
        if charge is not None:
            payment = record_charge(session, charge, now)
            matched = payment.id if payment.linked else matched
        if dispute is not None:
            matched = record_dispute(session, dispute, now).id
        if payout is not None:
            matched = record_payout(session, payout, now).id
        if bt.type in FEE_TYPES or (bt.amount_minor == 0 and bt.fee_minor):
            matched = matched or "fees"
        if matched and row.matched_to is None:
            row.matched_to = matched

    db.transaction(run)


def reconcile_payouts(db: Database, gateway: PaymentsGateway, clock: Callable[[], datetime]) -> int:
    """Sum each paid, not yet reconciled payout's balance transactions against its amount."""
    pending = db.read(lambda s: [p.id for p in s.scalars(select(StripePayout).where(
        col(StripePayout.status) == "paid", col(StripePayout.reconciled_at).is_(None)).order_by(
        col(StripePayout.seq)))])
    done = 0
    for payout_id in pending:
        covered: list[BalanceTransactionInfo] = []
        starting_after: str | None = None
        while True:
            page = gateway.list_balance_transactions(limit=PAGE, starting_after=starting_after, payout=payout_id)
            covered.extend(page.data)
            if not page.has_more or not page.data:
                break
            starting_after = page.data[-1].id
        ids = [bt.id for bt in covered]
        known = db.read(lambda s, ids=ids: _matched_ids(s, ids))  # type: ignore[misc]
        for bt in covered:
            if bt.id not in known:
                book_balance_transaction(db, gateway, clock, bt, payout_id)
        moved = [bt for bt in covered if bt.type not in PAYOUT_TYPES]
        net = sum(bt.net_minor for bt in moved)

        def finish(session: Session, payout_id: str = payout_id, net: int = net, count: int = len(moved),
                   ids: list[str] = ids) -> None:
            row = session.scalar(select(StripePayout).where(col(StripePayout.id) == payout_id).with_for_update())
            assert row is not None
            for bt_row in session.scalars(select(StripeBalanceTransaction).where(
                    col(StripeBalanceTransaction.id).in_(ids)).with_for_update()):
                bt_row.payout_id = bt_row.payout_id or payout_id
            row.transactions_count, row.transactions_net_minor = count, net
            row.difference_minor = row.amount_minor - net
            if row.difference_minor == 0:
                row.reconciled_at = clock()

        db.transaction(finish)
        done += 1
    return done


def _matched_ids(session: Session, ids: list[str]) -> set[str]:
    """Which of these balance transactions are already booked and matched."""
    return set(session.scalars(select(col(StripeBalanceTransaction.id)).where(
        col(StripeBalanceTransaction.id).in_(ids), col(StripeBalanceTransaction.matched_to).is_not(None))))
