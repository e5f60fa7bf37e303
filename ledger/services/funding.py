"""Money received: manual fundings, applying suspense money elsewhere, and reversing errors.

DOMAIN.md "Funding, pending and available". Every funding first lands in suspense (cash
debited, the remittance's suspense credited), then ``fund_from_suspense`` pays the
remittance's contributions whole, in order. Money beyond what is owed stays in suspense as
the contributor's credit until an administrator applies it to another remittance.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlmodel import col

from ledger.db import Database, fetch
from ledger.errors import ConflictError, NotFoundError, ValidationError
from ledger.ids import new_id
from ledger.pagination import Page, paginate
from ledger.postings import Leg, NewTransaction, cash, post, suspense
from ledger.services.remittances import fund_from_suspense, lock_remittance
from ledger.tables import Funding, Remittance


@dataclass(frozen=True)
class ManualFunding:
    """Money received outside Stripe, as an administrator records it (API.md)."""

    amount_minor: int
    currency: str
    reference: str
    received_at: datetime


def record_funding(db: Database, remittance_id: str, money: ManualFunding, now: datetime) -> Funding:
    """Record a bank transfer for a remittance and fund what it covers; returns the funding.

    Raises NotFoundError (no such remittance), ValidationError (another currency, a
    ``received_at`` in the future), ConflictError (a ``reference`` already recorded).
    """
    if money.received_at > now:
        raise ValidationError("received_at is in the future", {"received_at": ["Must not be in the future."]})

    def run(session: Session) -> Funding:
        rem = lock_remittance(session, remittance_id)
        if money.currency != rem.currency:
            raise ValidationError("currency differs from the remittance's",
                                  {"currency": [f"Must be the remittance's currency ({rem.currency})."]})
        if session.scalar(select(col(Funding.seq)).where(col(Funding.reference) == money.reference)) is not None:
            raise ConflictError("this reference was already recorded", {"reference": ["Already recorded."]})
        funding = Funding(
            id=new_id("fnd"), remittance_id=rem.id, contributor_id=rem.contributor_id, currency=rem.currency,
            amount_minor=money.amount_minor, source="manual", reference=money.reference,
            received_at=money.received_at, created_at=now,
        )
        session.add(funding)
        rem.amount_funded_minor += money.amount_minor
        session.flush()
        post(session, [_receipt(funding, rem.id, now)], now)
        fund_from_suspense(session, rem, now)
        session.refresh(funding)
        return funding

    return db.transaction(run)


def _receipt(funding: Funding, remittance_id: str | None, now: datetime) -> NewTransaction:
    return NewTransaction(
        kind="funding_received", currency=funding.currency, effective_at=now, funding_id=funding.id,
        remittance_id=remittance_id, contributor_id=funding.contributor_id,
        legs=[Leg(cash("bank", funding.currency), funding.amount_minor),
              Leg(suspense(remittance_id, funding.currency), -funding.amount_minor)],
    )


def apply_funding(db: Database, funding_id: str, remittance_id: str, amount_minor: int | None,
                  now: datetime) -> Funding:
    """Apply unmatched money, or a remittance's credit, to another remittance of the same contributor.

    Moves money from the source's suspense to the target's and funds the target. Only
    money beyond what the source remittance owes (its credit) can leave it. Returns the new
    funding on the target. Raises NotFoundError, ValidationError (another contributor or
    currency, more than can be moved), ConflictError (nothing to move).
    """

    def run(session: Session) -> Funding:
        source = fetch(session, Funding, funding_id, "funding")
        # remittances first, then the funding row: the order every other funding path takes
        ids = sorted({remittance_id, *([source.remittance_id] if source.remittance_id else [])})
        locked = {rid: _lock_or_422(session, rid, rid == remittance_id) for rid in ids}
        session.refresh(source, with_for_update=True)
        target = locked[remittance_id]
        if source.status != "recorded":
            raise ConflictError("this funding was reversed")
        if source.remittance_id == remittance_id:
            raise ValidationError("the funding already belongs to this remittance",
                                  {"remittance_id": ["The funding already belongs to this remittance."]})
        if target.contributor_id is None or (source.contributor_id is not None
                                             and target.contributor_id != source.contributor_id):
            raise ValidationError("the remittance belongs to another contributor",
                                  {"remittance_id": ["Must belong to the funding's contributor."]})
        if target.currency != source.currency:
            raise ValidationError("currency differs", {"remittance_id": ["Must be in the funding's currency."]})
        movable = source.amount_minor - source.applied_minor - source.moved_minor - source.returned_minor
        if source.remittance_id is not None:
            origin = locked[source.remittance_id]
            movable = min(movable, max(0, origin.amount_funded_minor - origin.amount_due_minor))
        amount = movable if amount_minor is None else amount_minor
        if movable <= 0:
            raise ConflictError("this funding has no money left to apply")
        if amount > movable:
            raise ValidationError("more than this funding can apply",
                                  {"amount_minor": [f"At most {movable} can be applied."]})
        return _move(session, source, locked.get(source.remittance_id or ""), target, amount, now)

    return db.transaction(run)


def _lock_or_422(session: Session, remittance_id: str, is_target: bool) -> Remittance:
    try:
        return lock_remittance(session, remittance_id)
    except NotFoundError as exc:
        if is_target:
            raise ValidationError("unknown remittance", {"remittance_id": ["Unknown remittance."]}) from exc
        raise


def _move(session: Session, source: Funding, origin: Remittance | None, target: Remittance, amount: int,
          now: datetime) -> Funding:
    moved = Funding(
        id=new_id("fnd"), remittance_id=target.id, contributor_id=target.contributor_id, currency=target.currency,
        amount_minor=amount, source="apply", applied_from_funding_id=source.id,
        received_at=source.received_at, created_at=now,
    )
    session.add(moved)
    source.moved_minor += amount
    if origin is not None:
        origin.amount_funded_minor -= amount
    target.amount_funded_minor += amount
    session.flush()
    post(session, [NewTransaction(
        kind="funding_moved", currency=target.currency, effective_at=now, funding_id=moved.id,
        remittance_id=target.id, contributor_id=target.contributor_id,
        legs=[Leg(suspense(source.remittance_id, target.currency), amount),
              Leg(suspense(target.id, target.currency), -amount)],
    )], now)
    fund_from_suspense(session, target, now)
    session.refresh(moved)
    return moved


def reverse_funding(db: Database, funding_id: str, now: datetime) -> Funding:
    """Undo a manual funding recorded in error, while none of its money was used.

    Raises NotFoundError, ConflictError (not manual, already reversed, or some of its
    money made a contribution available or was applied elsewhere).
    """

    def run(session: Session) -> Funding:
        funding = fetch(session, Funding, funding_id, "funding")
        rem = lock_remittance(session, funding.remittance_id) if funding.remittance_id else None
        session.refresh(funding, with_for_update=True)
        if funding.source != "manual":
            raise ConflictError("only a manual funding can be reversed")
        if funding.status != "recorded":
            raise ConflictError("this funding was already reversed")
        if funding.applied_minor or funding.moved_minor:
            raise ConflictError("some of this funding's money is already used; it cannot be reversed")
        assert rem is not None
        funding.status, funding.reversed_at = "reversed", now
        rem.amount_funded_minor -= funding.amount_minor
        reversal = _receipt(funding, rem.id, now)
        reversal.kind = "funding_reversed"
        reversal.legs = [Leg(leg.account, -leg.amount_minor) for leg in reversal.legs]
        post(session, [reversal], now)
        return funding

    return db.transaction(run)


def get_funding(db: Database, funding_id: str) -> Funding:
    """One funding (administrators only); NotFoundError when unknown."""

    def run(session: Session) -> Funding:
        row = fetch(session, Funding, funding_id, "funding")
        return row

    return db.read(run)


def list_fundings(db: Database, limit: int, cursor: str | None, unmatched: bool = False,
                  remittance_id: str | None = None) -> Page[Funding]:
    """Fundings newest first; ``unmatched`` keeps those that match no remittance."""
    query = select(Funding)
    if unmatched:
        query = query.where(col(Funding.remittance_id).is_(None))
    if remittance_id is not None:
        query = query.where(col(Funding.remittance_id) == remittance_id)
    return db.read(lambda s: paginate(s, query, Funding.seq, limit, cursor))
