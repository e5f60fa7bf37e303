"""Asking Stripe for money: a remittance's PaymentIntent and a member's own contribution.

DESIGN.md "Stripe": every create carries an idempotency key derived from our own id and
the amount, so a retry never charges twice, and an open PaymentIntent for the same amount
is reused. Network calls to Stripe happen outside database transactions (DESIGN.md
"Concurrency": keep transactions short); what we learn is written right after.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlmodel import col

from ledger.db import Database
from ledger.errors import ConflictError, ValidationError
from ledger.ids import new_id
from ledger.money import BUCKETS, exponent, split_largest_remainder
from ledger.payments import (
    OPEN_INTENT_STATUSES,
    PaymentIntentInfo,
    PaymentsGateway,
    PaymentsUnavailableError,
    charge_amount,
)
from ledger.postings import post
from ledger.principal import Principal
from ledger.services.catalog import check_allocation
from ledger.services.contributions import posting
from ledger.services.members import load_member, member_allocation
from ledger.services.remittances import fund_from_suspense, load_remittance, self_remittance
from ledger.services.stripe_settlement import record_payment_intent, register_intent
from ledger.tables import Contribution, StripePayment


@dataclass(frozen=True)
class IntentResult:
    """A PaymentIntent for the caller to confirm: ``amount_minor`` is what Stripe will charge."""

    payment_intent_id: str
    client_secret: str | None
    amount_minor: int
    currency: str
    remittance_id: str


def _require(gateway: PaymentsGateway | None) -> PaymentsGateway:
    if gateway is None:
        raise PaymentsUnavailableError("Stripe is not configured (set PBL_STRIPE_API_KEY)")
    return gateway


def _at_stripe(gateway: PaymentsGateway, rows: list[StripePayment]) -> dict[str, PaymentIntentInfo]:
    """Our intents that may still be open or unbooked, as Stripe has them now (one read each)."""
    return {row.id: gateway.retrieve_payment_intent(row.id) for row in rows
            if row.received_booked_minor == 0 and row.status in OPEN_INTENT_STATUSES | {""}}


def remittance_payment_intent(db: Database, gateway: PaymentsGateway | None, principal: Principal,
                              remittance_id: str, now: datetime) -> IntentResult:
    """A PaymentIntent for what ``remittance_id`` still owes (``short_minor``), with the
    remittance in its metadata (API.md ``POST /v1/remittances/{id}/payment-intents``).

    The amount is rounded up to what Stripe accepts (``charge_amount``: KWD to a multiple
    of 10 fils); the extra becomes the contributor's credit. Raises NotFoundError (out of
    scope), ConflictError (nothing is owed), PaymentsUnavailableError (Stripe not
    configured or unreachable: nothing is recorded).
    """
    rem = db.read(lambda s: load_remittance(s, principal, remittance_id))
    if rem.amount_due_minor - rem.amount_funded_minor <= 0:
        raise ConflictError("nothing is owed on this remittance", {"remittance_id": ["Nothing is owed."]})
    stripe = _require(gateway)
    rows = db.read(lambda s: list(s.scalars(
        select(StripePayment).where(col(StripePayment.remittance_id) == rem.id,
                                    col(StripePayment.contribution_id).is_(None))
        .order_by(col(StripePayment.seq).desc()))))
    current = _at_stripe(stripe, rows)
    if _book_paid_intents(db, current, now):  # paid at Stripe, its webhook not in yet
        rem = db.read(lambda s: load_remittance(s, principal, remittance_id))
    short = rem.amount_due_minor - rem.amount_funded_minor
    if short <= 0:
        raise ConflictError("nothing is owed on this remittance", {"remittance_id": ["Nothing is owed."]})
    amount = charge_amount(short, rem.currency)
    info, key = _reuse_or_create(stripe, rows, current, amount, rem.currency, f"pbl:{rem.id}:{amount}:{len(rows)}",
                                 {"remittance_id": rem.id})
    db.transaction(lambda s: register_intent(s, info, rem.id, None, key, now))
    return IntentResult(info.id, info.client_secret, info.amount_minor, rem.currency, rem.id)


def _book_paid_intents(db: Database, current: dict[str, PaymentIntentInfo], now: datetime) -> bool:
    """Book our earlier intents that Stripe shows paid but we have not booked (a webhook still
    on its way), so a second intent is never made for money already paid. True if any was."""
    paid = [info for info in current.values() if info.amount_received_minor > 0]
    for info in paid:
        db.transaction(lambda s, i=info: record_payment_intent(s, i, now))  # type: ignore[misc]
    return bool(paid)


def _reuse_or_create(gateway: PaymentsGateway, rows: list[StripePayment], current: dict[str, PaymentIntentInfo],
                     amount: int, currency: str, key: str, metadata: dict[str, str]) -> tuple[PaymentIntentInfo, str]:
    """The newest of our intents that Stripe still shows open and unpaid for ``amount`` (and
    its key), or a new one created under ``key``."""
    for row in rows:
        info = current.get(row.id)
        if info is not None and info.status in OPEN_INTENT_STATUSES and info.amount_minor == amount \
                and info.amount_received_minor == 0:
            return info, row.idempotency_key or row.id
    return gateway.create_payment_intent(amount, currency, metadata, key), key


@dataclass(frozen=True)
class SelfContribution:
    """A member's own contribution (API.md ``POST /v1/members/{id}/contributions``)."""

    external_id: str
    amount_minor: int
    currency: str
    allocation: dict[str, int] | None = None

    def digest(self) -> str:
        """SHA-256 of the request's values: the same request sent again matches."""
        alloc = tuple(self.allocation[b] for b in BUCKETS) if self.allocation else None
        return hashlib.sha256(repr((self.external_id, self.amount_minor, self.currency, alloc)).encode()).hexdigest()


@dataclass(frozen=True)
class SelfContributionResult:
    """The contribution, whether it was created now, and its PaymentIntent (None without Stripe)."""

    contribution: Contribution
    created: bool
    intent: IntentResult | None


def post_self_contribution(db: Database, gateway: PaymentsGateway | None, principal: Principal, member_id: str,
                           request: SelfContribution, today: date, due_day: int,
                           now: datetime) -> SelfContributionResult:
    """Record a member's own contribution, pending in their self remittance, and ask
    Stripe for it.

    Split by ``allocation`` (basis points), else by the member's election, with the
    largest remainder (DOMAIN.md "Money"); neither: ValidationError on ``allocation``.
    The same ``external_id`` with the same request returns the first contribution (and
    its still-open PaymentIntent); with another request: ConflictError. Without Stripe
    configured the contribution is recorded and ``intent`` is None (an administrator can
    fund it by hand); Stripe unreachable: PaymentsUnavailableError, the contribution stays
    pending and the same request again retries the PaymentIntent.
    """
    exponent(request.currency)

    def run(session: Session) -> tuple[Contribution, bool]:
        member = load_member(session, principal, member_id, lock=True)
        existing = session.scalar(select(Contribution).where(
            col(Contribution.member_id) == member_id, col(Contribution.contributor_id).is_(None),
            col(Contribution.external_id) == request.external_id))
        if existing is not None:
            if existing.request_hash != request.digest():
                raise ConflictError("external_id was used for another contribution",
                                    {"external_id": ["Already used for another contribution."]})
            return existing, False
        if request.allocation is not None:
            check_allocation(request.allocation)
        weights = request.allocation or member_allocation(member)
        if weights is None:
            raise ValidationError("no allocation given and the member has made no election",
                                  {"allocation": ["Required: the member has no allocation election."]})
        parts = split_largest_remainder(request.amount_minor, weights)
        rem = self_remittance(session, member_id, request.currency, today, due_day, now)
        row = Contribution(
            id=new_id("ctb"), kind="self", external_id=request.external_id, contributor_id=None,
            member_id=member_id, remittance_id=rem.id, currency=request.currency, amount_minor=request.amount_minor,
            allocation_healthcare_minor=parts["healthcare"], allocation_retirement_minor=parts["retirement"],
            allocation_training_minor=parts["training"], eligible=True, status="pending",
            request_hash=request.digest(), created_at=now,
        )
        session.add(row)
        session.flush()
        rem.amount_due_minor += request.amount_minor
        rem.line_count += 1
        post(session, [posting([row])], now)
        fund_from_suspense(session, rem, now, prefer=row.id)
        session.refresh(row)
        return row, True

    contribution, created = db.transaction(run)
    if gateway is None:
        return SelfContributionResult(contribution, created, None)
    amount = charge_amount(contribution.amount_minor, contribution.currency)
    rows = db.read(lambda s: list(s.scalars(
        select(StripePayment).where(col(StripePayment.contribution_id) == contribution.id)
        .order_by(col(StripePayment.seq).desc()))))
    if contribution.status != "pending":  # paid already: the same answer again, the intent that paid it
        paid = next((r for r in rows if r.received_booked_minor > 0), rows[0] if rows else None)
        if paid is None:
            return SelfContributionResult(contribution, created, None)
        return SelfContributionResult(contribution, created, IntentResult(
            paid.id, gateway.retrieve_payment_intent(paid.id).client_secret, paid.amount_minor,
            contribution.currency, contribution.remittance_id))
    metadata = {"remittance_id": contribution.remittance_id, "contribution_id": contribution.id,
                "member_id": member_id}
    info, key = _reuse_or_create(gateway, rows, _at_stripe(gateway, rows), amount, contribution.currency,
                                 f"pbl:{contribution.id}:{amount}:{len(rows)}", metadata)
    db.transaction(lambda s: register_intent(s, info, contribution.remittance_id, contribution.id, key, now))
    return SelfContributionResult(contribution, created, IntentResult(
        info.id, info.client_secret, info.amount_minor, contribution.currency, contribution.remittance_id))
