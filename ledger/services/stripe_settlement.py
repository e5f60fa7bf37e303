"""Booking what Stripe reports: payments, refunds, disputes, fees and payouts.

DESIGN.md "Stripe": events may arrive twice and in any order, so nothing here adds what an
event says; each Stripe object raises *targets* that only grow (received, refunded, taken
in a dispute, given back in a dispute, paid out, returned), taken as the largest seen, and
``settle_payment`` posts the difference between the targets and what the ledger booked.
Whatever the order, the same targets give the same ledger.

Flows (DOMAIN.md "Funding, pending and available"; DESIGN.md "Double entry"):
- money received: ``cash:stripe`` debited, the remittance's suspense credited (a Stripe
  funding, ``reference`` = the PaymentIntent id), then ``fund_from_suspense``;
- money given back (refund, dispute withdrawal): ``cash:stripe`` credited; the part still
  in suspense leaves it, the part that already made contributions available reopens the
  payer's receivable (``reopened_minor``): a member's available money is never taken back;
- money given back to us (a dispute won): like money received;
- a fee (each balance transaction's, exactly once): ``fees`` debited, ``cash:stripe`` credited;
- a payout: ``cash:bank`` debited, ``cash:stripe`` credited (reversed if it fails).
Every function takes a session inside the caller's database transaction.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import or_, select
from sqlalchemy.orm import Session
from sqlmodel import col

from ledger.db import insert_ignore
from ledger.errors import NotFoundError, ValidationError
from ledger.ids import new_id
from ledger.money import exponent
from ledger.payments import (
    SAFE_ID,
    BalanceTransactionInfo,
    ChargeInfo,
    DisputeInfo,
    PaymentIntentInfo,
    PayoutInfo,
    balance_transaction_from,
    charge_from,
    dispute_from,
    payment_intent_from,
    payout_from,
)
from ledger.postings import (
    Leg,
    NewTransaction,
    cash,
    fees,
    merge_legs,
    payer_receivable,
    post,
    stripe_losses,
    suspense,
)
from ledger.services.remittances import fund_from_suspense, lock_remittance
from ledger.tables import (
    Funding,
    Remittance,
    StripeBalanceTransaction,
    StripeDispute,
    StripeEvent,
    StripePayment,
    StripePayout,
)

R = TypeVar("R")

#: How far a PaymentIntent has got: a late event never moves the recorded status back.
_INTENT_RANK = {"requires_payment_method": 0, "requires_confirmation": 1, "requires_action": 2,
                "processing": 3, "requires_capture": 4, "canceled": 5, "succeeded": 6}
#: balance transaction types that are themselves a cost to the fund (their ``amount`` is negative)
FEE_TYPES = frozenset({"stripe_fee", "tax", "application_fee", "stripe_fx_fee", "network_cost"})
_PAYOUT_RANK = {"pending": 0, "in_transit": 1, "canceled": 2, "paid": 3, "failed": 4}


def _later(current: str, seen: str, rank: dict[str, int]) -> str:
    return seen if rank.get(seen, -1) >= rank.get(current, -1) else current


# -- rows ------------------------------------------------------------------------------------


def _locked_row(session: Session, model: type[R], row_id: str, first: dict[str, Any]) -> R:
    """The row with public ``id`` ``row_id``, inserted with ``first`` when first seen (a
    concurrent twin's insert wins quietly), then locked and read fresh for this transaction."""
    insert_ignore(session, model.__table__, [{"id": row_id, **first}])  # type: ignore[attr-defined]
    row = session.scalar(select(model).where(model.id == row_id).with_for_update()  # type: ignore[attr-defined,arg-type]
                         .execution_options(populate_existing=True))
    assert row is not None
    return row


def _payment_row(session: Session, payment_id: str, currency: str, now: datetime) -> StripePayment:
    """The payment's row, created when first seen, locked for this transaction."""
    return _locked_row(session, StripePayment, payment_id, {
        "linked": False, "currency": currency, "amount_minor": 0, "status": "",
        "received_target_minor": 0, "received_booked_minor": 0, "refunded_target_minor": 0,
        "refunded_booked_minor": 0, "given_back_minor": 0, "lost_minor": 0, "created_at": now, "updated_at": now,
    })


def register_intent(session: Session, info: PaymentIntentInfo, remittance_id: str, contribution_id: str | None,
                    idempotency_key: str, now: datetime) -> StripePayment:
    """Remember a PaymentIntent we created for a remittance (or a member's contribution)."""
    row = _payment_row(session, info.id, info.currency, now)
    if not row.linked:
        row.linked, row.remittance_id, row.contribution_id = True, remittance_id, contribution_id
    row.amount_minor = info.amount_minor
    row.idempotency_key = row.idempotency_key or idempotency_key
    row.status = _later(row.status, info.status, _INTENT_RANK)
    row.updated_at = now
    return row


def _link(session: Session, row: StripePayment, metadata: dict[str, str]) -> None:
    """Decide where an intent's money goes: the remittance its metadata names, when that
    remittance exists in the same currency; else nowhere (unmatched money, in suspense)."""
    if row.linked:
        return
    rem = session.scalar(select(Remittance).where(col(Remittance.id) == metadata.get("remittance_id", "")))
    row.linked = True
    if rem is not None and rem.currency == row.currency:
        row.remittance_id = rem.id
        contribution = metadata.get("contribution_id")
        row.contribution_id = contribution if contribution and contribution.startswith("ctb_") else None


def record_payment_intent(session: Session, info: PaymentIntentInfo, now: datetime) -> StripePayment:
    """Apply a PaymentIntent's state (an event, or what reconciliation retrieved)."""
    exponent(info.currency)
    row = _payment_row(session, info.id, info.currency, now)
    row.status = _later(row.status, info.status, _INTENT_RANK)
    row.amount_minor = info.amount_minor
    row.received_target_minor = max(row.received_target_minor, info.amount_received_minor)
    row.charge_id = row.charge_id or info.charge_id
    row.updated_at = now
    _link(session, row, info.metadata)
    if info.charge is not None:
        _merge_charge(session, row, info.charge, now)
    settle_payment(session, row, now)
    return row


def record_charge(session: Session, info: ChargeInfo, now: datetime) -> StripePayment:
    """Apply a charge's state: what it captured and refunded, and its fee when it carries it.

    A charge of an intent we have not seen yet is kept (targets only) until the intent
    tells where its money goes.
    """
    exponent(info.currency)
    row = _payment_row(session, info.payment_intent_id or info.id, info.currency, now)
    if info.payment_intent_id is None:  # a charge made without an intent matches no remittance
        _link(session, row, info.metadata)
    _merge_charge(session, row, info, now)
    settle_payment(session, row, now)
    return row


def _merge_charge(session: Session, row: StripePayment, info: ChargeInfo, now: datetime) -> None:
    row.charge_id = row.charge_id or info.id
    row.received_target_minor = max(row.received_target_minor, info.amount_captured_minor)
    row.refunded_target_minor = max(row.refunded_target_minor, info.amount_refunded_minor)
    row.updated_at = now
    if info.balance_transaction is not None:
        record_balance_transaction(session, info.balance_transaction, now)


def record_dispute(session: Session, info: DisputeInfo, now: datetime) -> StripeDispute:
    """Apply a dispute's state: what Stripe took and gave back (its fees come with its
    balance transactions)."""
    exponent(info.currency)
    row = _locked_row(session, StripeDispute, info.id, {
        "currency": info.currency, "amount_minor": info.amount_minor, "status": "",
        "withdrawn_target_minor": 0, "withdrawn_booked_minor": 0, "reinstated_target_minor": 0,
        "reinstated_booked_minor": 0, "created_at": now, "updated_at": now,
    })
    row.payment_intent_id = row.payment_intent_id or info.payment_intent_id
    row.charge_id = row.charge_id or info.charge_id
    row.withdrawn_target_minor = max(row.withdrawn_target_minor, info.withdrawn_minor)
    row.reinstated_target_minor = max(row.reinstated_target_minor, info.reinstated_minor)
    row.status = info.status if info.status in ("won", "lost") or row.status not in ("won", "lost") else row.status
    row.updated_at = now
    payment = None
    if row.payment_intent_id is not None:
        payment = _payment_row(session, row.payment_intent_id, row.currency, now)
        payment.charge_id = payment.charge_id or row.charge_id
    elif row.charge_id is not None:
        payment = session.scalar(select(StripePayment).where(col(StripePayment.charge_id) == row.charge_id)
                                 .with_for_update())
    if payment is not None:
        settle_payment(session, payment, now)
    return row


def record_balance_transaction(session: Session, info: BalanceTransactionInfo, now: datetime,
                               payout_id: str | None = None) -> StripeBalanceTransaction:
    """Keep a Stripe balance transaction and book its fee to ``fees``, exactly once."""
    exponent(info.currency)
    row = _locked_row(session, StripeBalanceTransaction, info.id, {
        "type": info.type, "currency": info.currency, "amount_minor": info.amount_minor,
        "fee_minor": info.fee_minor, "net_minor": info.net_minor, "source_id": info.source_id,
        "payout_id": payout_id, "created": info.created, "seen_at": now,
    })
    if payout_id is not None and row.payout_id is None:
        row.payout_id = payout_id
    # a charge's fee is in ``fee``; a transaction that is itself a fee carries it in ``amount``
    cost = row.fee_minor - (row.amount_minor if row.type in FEE_TYPES else 0)
    if cost != 0 and row.fee_transaction_id is None:
        txn = NewTransaction(
            kind="stripe_fee", currency=row.currency, effective_at=now, memo=f"Stripe fee on {row.id}",
            legs=[Leg(fees(row.currency), cost), Leg(cash("stripe", row.currency), -cost)],
        )
        post(session, [txn], now)
        row.fee_transaction_id = txn.id
    return row


def record_payout(session: Session, info: PayoutInfo, now: datetime) -> StripePayout:
    """Apply a payout's state: once paid, its amount moves from ``cash:stripe`` to
    ``cash:bank``; if it then fails, it moves back."""
    exponent(info.currency)
    row = _locked_row(session, StripePayout, info.id, {
        "currency": info.currency, "amount_minor": info.amount_minor, "status": "",
        "sent_target_minor": 0, "returned_target_minor": 0, "booked_minor": 0, "created_at": now, "updated_at": now,
    })
    row.status = _later(row.status, info.status, _PAYOUT_RANK)
    row.amount_minor = info.amount_minor
    if info.status in ("paid", "failed"):
        row.sent_target_minor = max(row.sent_target_minor, info.amount_minor)
    if info.status == "failed":
        row.returned_target_minor = max(row.returned_target_minor, info.amount_minor)
    row.updated_at = now
    delta = row.sent_target_minor - row.returned_target_minor - row.booked_minor
    if delta:
        post(session, [NewTransaction(
            kind="stripe_payout" if delta > 0 else "stripe_payout_failed", currency=row.currency,
            effective_at=now, memo=f"Stripe payout {row.id}",
            legs=[Leg(cash("bank", row.currency), delta), Leg(cash("stripe", row.currency), -delta)],
        )], now)
        row.booked_minor += delta
    return row


# -- settling a payment -------------------------------------------------------------------------


def settle_payment(session: Session, row: StripePayment, now: datetime) -> None:
    """Post what ``row``'s targets (and its disputes') say and the ledger has not booked yet.

    Money received is booked first and funds the remittance (as it would have had its
    success arrived alone), then what was given back, so refund-then-success and
    success-then-refund end in the same ledger. Nothing is posted until the payment is
    linked (we know which remittance, or none, its money belongs to).
    """
    if not row.linked:
        return
    rem = lock_remittance(session, row.remittance_id) if row.remittance_id else None
    funding = _funding(session, row)
    received = row.received_target_minor - row.received_booked_minor
    if received > 0:
        funding = _receive(session, row, rem, funding, received, now)
        if rem is not None:
            fund_from_suspense(session, rem, now, prefer=row.contribution_id)
            funding = _funding(session, row)  # reread: funding it updated the row's applied amount
    disputes = list(session.scalars(
        select(StripeDispute).where(or_(col(StripeDispute.payment_intent_id) == row.id,
                                        col(StripeDispute.charge_id) == (row.charge_id or "")))
        .order_by(col(StripeDispute.seq)).with_for_update()
    ))
    # What Stripe has taken back for this payment, net: refunds plus disputes lost minus
    # disputes won, each the largest amount seen. The payer's share (what reopens its debt or
    # leaves suspense) is at most what was received; anything beyond is the fund's loss.
    taken = max(0, row.refunded_target_minor + sum(d.withdrawn_target_minor - d.reinstated_target_minor
                                                   for d in disputes))
    payer = min(taken, row.received_booked_minor)
    payer_delta, loss_delta = payer - row.given_back_minor, (taken - payer) - row.lost_minor
    if funding is None:  # nothing received: nothing can be given back yet (the targets wait)
        return
    if not (payer_delta or loss_delta):
        _mark_booked(row, disputes)
        return
    touched: dict[str, Remittance] = {rem.id: rem} if rem is not None else {}
    legs = _give_back(session, funding, payer_delta, touched) if payer_delta > 0 else \
        _take_back(session, funding, -payer_delta, touched)[0] if payer_delta < 0 else []
    if loss_delta:
        legs.append(Leg(stripe_losses(row.currency), loss_delta))
    out = payer_delta + loss_delta
    if out:
        won = out < 0
        kind = "stripe_dispute_won" if won else (
            "stripe_refund" if row.refunded_target_minor > row.refunded_booked_minor
            and all(d.withdrawn_target_minor == d.withdrawn_booked_minor for d in disputes) else "stripe_dispute")
        post(session, [NewTransaction(
            kind=kind, currency=row.currency, effective_at=now, funding_id=funding.id,
            remittance_id=row.remittance_id, contributor_id=funding.contributor_id,
            memo=f"{'given back to us' if won else 'given back'} on {row.id}",
            legs=merge_legs([*legs, Leg(cash("stripe", row.currency), -out)]),
        )], now)
    elif legs:  # the payer's share and the loss moved in opposite directions by the same amount
        post(session, [NewTransaction(
            kind="stripe_dispute", currency=row.currency, effective_at=now, funding_id=funding.id,
            remittance_id=row.remittance_id, contributor_id=funding.contributor_id, memo=f"loss on {row.id}",
            legs=merge_legs(legs),
        )], now)
    row.given_back_minor, row.lost_minor = payer, taken - payer
    _mark_booked(row, disputes)
    for target in sorted(touched.values(), key=lambda r: r.id):
        fund_from_suspense(session, target, now, prefer=row.contribution_id if target is rem else None)


def _mark_booked(row: StripePayment, disputes: list[StripeDispute]) -> None:
    """Every target of a linked payment is in the ledger now (as the payer's share or a loss)."""
    row.refunded_booked_minor = row.refunded_target_minor
    for d in disputes:
        d.withdrawn_booked_minor, d.reinstated_booked_minor = d.withdrawn_target_minor, d.reinstated_target_minor


def _funding(session: Session, row: StripePayment) -> Funding | None:
    if row.funding_id is None:
        return None
    return session.scalar(select(Funding).where(col(Funding.id) == row.funding_id).with_for_update()
                          .execution_options(populate_existing=True))


def _receive(session: Session, row: StripePayment, rem: Remittance | None, funding: Funding | None, amount: int,
             now: datetime) -> Funding:
    """Book ``amount`` received on ``row``: its Stripe funding grows, suspense is credited."""
    if funding is None:
        funding = Funding(
            id=new_id("fnd"), remittance_id=rem.id if rem else None, contributor_id=rem.contributor_id if rem else None,
            currency=row.currency, amount_minor=amount, source="stripe", reference=row.id, received_at=now,
            created_at=now,
        )
        session.add(funding)
        row.funding_id = funding.id
    else:
        funding.amount_minor += amount
    if rem is not None:
        rem.amount_funded_minor += amount
    row.received_booked_minor += amount
    session.flush()
    post(session, [NewTransaction(
        kind="stripe_received", currency=row.currency, effective_at=now, funding_id=funding.id,
        remittance_id=funding.remittance_id, contributor_id=funding.contributor_id, memo=f"Stripe payment {row.id}",
        legs=[Leg(cash("stripe", row.currency), amount), Leg(suspense(funding.remittance_id, row.currency), -amount)],
    )], now)
    return funding


def _give_back(session: Session, funding: Funding, amount: int, touched: dict[str, Remittance]) -> list[Leg]:
    """Take ``amount`` of ``funding``'s money back: the debit legs (the caller credits cash).

    From the money still in suspense first, then by reopening what its money paid (the
    payer's receivable and the remittance's ``reopened_minor``: a member's available money
    is never taken back), then from money an administrator moved to another remittance,
    newest move first, the same way there. Remittances are locked as they are reached and
    kept in ``touched`` so the caller can fund them again from their suspense.
    """
    legs: list[Leg] = []
    rem = touched.get(funding.remittance_id or "")
    if funding.remittance_id is not None and rem is None:
        rem = lock_remittance(session, funding.remittance_id)
        touched[rem.id] = rem
    unused = funding.amount_minor - funding.applied_minor - funding.moved_minor - funding.returned_minor
    from_suspense = min(amount, max(0, unused))
    if from_suspense:
        legs.append(Leg(suspense(funding.remittance_id, funding.currency), from_suspense))
    reopened = min(amount - from_suspense, funding.applied_minor) if rem is not None else 0
    if reopened:
        assert rem is not None
        funding.applied_minor -= reopened
        rem.reopened_minor += reopened
        legs.append(Leg(payer_receivable(rem.contributor_id, rem.member_id or "", funding.currency), reopened))
    funding.returned_minor += from_suspense + reopened
    if rem is not None:
        rem.amount_funded_minor -= from_suspense + reopened
    left = amount - from_suspense - reopened
    if left:
        children = session.scalars(select(Funding).where(col(Funding.applied_from_funding_id) == funding.id)
                                   .order_by(col(Funding.seq).desc()).with_for_update()
                                   .execution_options(populate_existing=True))
        for child in children:
            step = min(left, child.amount_minor - child.returned_minor)
            if step > 0:
                legs.extend(_give_back(session, child, step, touched))
                left -= step
            if not left:
                break
    return legs


def _take_back(session: Session, funding: Funding, amount: int,
               touched: dict[str, Remittance]) -> tuple[list[Leg], int]:
    """Undo up to ``amount`` of what ``_give_back`` took from ``funding``: money given back to
    us (a dispute won). Returns (the credit legs into suspense, the amount taken back).

    It returns to the suspense it left (the funding's own returns first, then the fundings
    it was moved to, newest first); funding from suspense then pays what was reopened.
    """
    legs: list[Leg] = []
    own = min(amount, funding.returned_minor)
    if own:
        rem = touched.get(funding.remittance_id or "")
        if funding.remittance_id is not None and rem is None:
            rem = lock_remittance(session, funding.remittance_id)
            touched[rem.id] = rem
        funding.returned_minor -= own
        if rem is not None:
            rem.amount_funded_minor += own
        legs.append(Leg(suspense(funding.remittance_id, funding.currency), -own))
    taken = own
    if taken < amount:
        children = session.scalars(select(Funding).where(col(Funding.applied_from_funding_id) == funding.id)
                                   .order_by(col(Funding.seq).desc()).with_for_update()
                                   .execution_options(populate_existing=True))
        for child in children:
            child_legs, step = _take_back(session, child, amount - taken, touched)
            legs.extend(child_legs)
            taken += step
            if taken == amount:
                break
    return legs, taken


# -- webhook events ---------------------------------------------------------------------------------


def apply_event(session: Session, event: dict[str, Any], now: datetime) -> tuple[str, bool]:
    """Store a verified webhook event once and apply its object; returns (outcome, duplicate).

    The event row is written first: a concurrent second delivery of the same event fails
    on its unique id and, retried, finds it (DESIGN.md "Stripe": "store the event id
    (unique) and apply it in one transaction").
    """
    event_id = event.get("id")
    if not isinstance(event_id, str) or not SAFE_ID.fullmatch(event_id):
        raise ValidationError("the event has no id", {"id": ["Required: a Stripe event id (1 to 255 letters, "
                                                             "digits and _.:-)."]})
    existing = session.scalar(select(StripeEvent).where(col(StripeEvent.id) == event_id))
    if existing is not None:
        return existing.outcome, True
    raw_type = event.get("type")
    event_type = raw_type if isinstance(raw_type, str) else ""
    if not SAFE_ID.fullmatch(event_type or "x") or len(event_type) > 100:
        raise ValidationError("the event type is not a Stripe event type", {"type": ["Not a Stripe event type."]})
    data = event.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    object_id = obj.get("id") if isinstance(obj, dict) else None
    created = event.get("created")
    row = StripeEvent(
        id=event_id, type=event_type,
        object_id=object_id if isinstance(object_id, str) and SAFE_ID.fullmatch(object_id) else None,
        outcome="received", received_at=now,
        created=datetime.fromtimestamp(created, UTC) if isinstance(created, int) and 0 < created < 2**33 else None,
    )
    session.add(row)
    session.flush()
    row.outcome = _dispatch(session, event_type, obj, now) if isinstance(obj, dict) else "ignored"
    return row.outcome, False


def _dispatch(session: Session, event_type: str, obj: dict[str, Any], now: datetime) -> str:
    kind = obj.get("object")
    if kind == "payment_intent" and event_type.startswith("payment_intent."):
        payment = record_payment_intent(session, payment_intent_from(obj), now)
        return "applied" if payment.remittance_id else "unmatched"
    if kind == "charge" and event_type.startswith("charge.") and not event_type.startswith("charge.dispute."):
        payment = record_charge(session, charge_from(obj), now)
        return "applied" if payment.linked else "waiting_for_payment_intent"
    if kind == "dispute" and event_type.startswith("charge.dispute."):
        dispute = record_dispute(session, dispute_from(obj), now)
        _record_dispute_transactions(session, obj, dispute.id, now)
        return "applied"
    if kind == "payout" and event_type.startswith("payout."):
        record_payout(session, payout_from(obj), now)
        return "applied"
    if kind == "balance_transaction":
        record_balance_transaction(session, balance_transaction_from(obj), now)
        return "applied"
    return "ignored"


def _record_dispute_transactions(session: Session, obj: dict[str, Any], dispute_id: str, now: datetime) -> None:
    """Keep the balance transactions a dispute event carries (Stripe embeds them whole) and
    book their fees now, each exactly once, matched to the dispute; reconciliation reading
    them later finds them booked. Without this a dispute's fee would wait for a
    reconciliation that reads Stripe's balance history."""
    for item in obj.get("balance_transactions") or []:
        if isinstance(item, dict):
            row = record_balance_transaction(session, balance_transaction_from(item), now)
            row.matched_to = row.matched_to or dispute_id


def find_payment(session: Session, payment_id: str) -> StripePayment:
    """The payment row; NotFoundError when we never saw that PaymentIntent."""
    row = session.scalar(select(StripePayment).where(col(StripePayment.id) == payment_id))
    if row is None:
        raise NotFoundError("payment not found")
    return row
