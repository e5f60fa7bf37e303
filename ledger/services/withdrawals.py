"""Withdrawals and their yearly limits (DOMAIN.md "Withdrawals").

A withdrawal first holds its amount (``available`` to ``held`` in the bucket), then an
administrator completes it (``held`` to ``cash:bank``: the money leaves) or it is cancelled
(back to ``available``). Never more than available: the bucket's accounts are locked
before the balance is read, so concurrent requests cannot overdraw it.

Yearly limits are set by the fund per bucket, purpose and tax year (the calendar year of
the request in the business timezone): what is held or completed in that year plus the
request may not pass the limit, raised by the highest catch-up whose age the member reaches
in the tax year (tax year minus birth year). An HSA limit depends on the member's coverage.
A request over the limit is refused for the limit, naming what is still allowed, even when
it is also over the balance.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlmodel import col

from ledger.db import Database
from ledger.errors import ConflictError, InsufficientFundsError, LimitExceededError, NotFoundError, ValidationError
from ledger.ids import new_id
from ledger.money import exponent
from ledger.pagination import Page, paginate
from ledger.postings import Leg, NewTransaction, cash, lock_accounts, member_account, post
from ledger.principal import Principal
from ledger.services.members import load_member
from ledger.tables import Member, Withdrawal, WithdrawalLimit

#: the purposes each bucket may be spent on
PURPOSES: dict[str, tuple[str, ...]] = {
    "healthcare": ("premium", "medical_expense", "hsa_transfer"),
    "retirement": ("ira_transfer",),
    "training": ("tuition",),
}
COVERAGES = ("self_only", "family")


@dataclass(frozen=True)
class WithdrawalRequest:
    """``{bucket, amount_minor, currency, purpose, payee}`` (API.md)."""

    bucket: str
    amount_minor: int
    currency: str
    purpose: str
    payee: str


@dataclass(frozen=True)
class CatchUp:
    """Extra room from an age on (``min_age`` reached in the tax year)."""

    min_age: int
    extra_minor: int


def catch_up_for(catch_ups: list[CatchUp], age: int | None) -> int:
    """The highest catch-up whose age is reached (they do not add up); 0 without a birth year.

    ``[CatchUp(50, 110_000)]`` at 52 -> 110,000; at 49 -> 0.
    """
    if age is None:
        return 0
    reached = [c for c in catch_ups if age >= c.min_age]
    return max(reached, key=lambda c: c.min_age).extra_minor if reached else 0


def allowed_minor(limit_minor: int, catch_up_minor: int, used_minor: int) -> int:
    """What a member may still withdraw in the year: limit plus catch-up minus used, never below 0.

    2026 IRA: 750,000 + 0 - 700,000 -> 50,000 (DOMAIN.md: a member born 1986 with $7,000.00
    moved asks for $800.00, refused naming $500.00).
    """
    return max(0, limit_minor + catch_up_minor - used_minor)


def check_purpose(bucket: str, purpose: str) -> None:
    """ValidationError unless ``purpose`` is one of ``bucket``'s."""
    if purpose not in PURPOSES.get(bucket, ()):
        raise ValidationError("that purpose is not one of the bucket's",
                              {"purpose": [f"Must be one of {', '.join(PURPOSES.get(bucket, ()))} for {bucket}."]})


def _limit_for(session: Session, member: Member, bucket: str, purpose: str, tax_year: int,
               currency: str) -> WithdrawalLimit | None:
    """The limit that applies: the one for the member's coverage, else one for any member,
    else (coverage limits only, none for this member's coverage or the member has none) the
    lowest of them: the safe side, never no limit at all."""
    rows = list(session.scalars(select(WithdrawalLimit).where(
        col(WithdrawalLimit.bucket) == bucket, col(WithdrawalLimit.purpose) == purpose,
        col(WithdrawalLimit.tax_year) == tax_year, col(WithdrawalLimit.currency) == currency)))
    if not rows:
        return None
    for row in rows:
        if member.hsa_coverage is not None and row.coverage == member.hsa_coverage:
            return row
    anyone = [row for row in rows if row.coverage is None]
    return anyone[0] if anyone else min(rows, key=lambda r: r.limit_minor)


def used_minor(session: Session, member_id: str, bucket: str, purpose: str, tax_year: int, currency: str) -> int:
    """What the member holds or completed for ``bucket`` and ``purpose`` in ``tax_year``."""
    total = session.scalar(select(func.coalesce(func.sum(col(Withdrawal.amount_minor)), 0)).where(
        col(Withdrawal.member_id) == member_id, col(Withdrawal.bucket) == bucket,
        col(Withdrawal.purpose) == purpose, col(Withdrawal.tax_year) == tax_year,
        col(Withdrawal.currency) == currency, col(Withdrawal.status).in_(("held", "completed"))))
    return int(total or 0)


def create_withdrawal(db: Database, principal: Principal, member_id: str, request: WithdrawalRequest,
                      today: date, now: datetime) -> Withdrawal:
    """Hold ``amount_minor`` of the bucket's available money for a withdrawal.

    Raises NotFoundError (member out of scope), ValidationError (a purpose not of the
    bucket, an unknown currency), LimitExceededError (over the year's limit; ``errors``
    carries ``max_allowed_minor``), InsufficientFundsError (over the available balance).
    Nothing is written when it raises.
    """
    exponent(request.currency)
    check_purpose(request.bucket, request.purpose)
    tax_year = today.year

    def run(session: Session) -> Withdrawal:
        member = load_member(session, principal, member_id)
        available = member_account(member_id, request.bucket, "available", request.currency)
        held = member_account(member_id, request.bucket, "held", request.currency)
        # the bucket's accounts are locked first: concurrent withdrawals of this member and
        # bucket run one at a time from here, so the limit and the balance read are current
        locked = lock_accounts(session, [available, held])
        limit = _limit_for(session, member, request.bucket, request.purpose, tax_year, request.currency)
        if limit is not None:
            catch_ups = [CatchUp(int(c["min_age"]), int(c["extra_minor"])) for c in json.loads(limit.catch_up_json)]
            age = tax_year - member.birth_year if member.birth_year is not None else None
            used = used_minor(session, member_id, request.bucket, request.purpose, tax_year, request.currency)
            allowed = allowed_minor(limit.limit_minor, catch_up_for(catch_ups, age), used)
            if request.amount_minor > allowed:
                raise LimitExceededError(
                    f"over the {tax_year} limit for {request.purpose}: {allowed} minor units are still allowed",
                    {"max_allowed_minor": allowed,
                     "amount_minor": [f"At most {allowed} may be withdrawn for {request.purpose} in {tax_year}."]})
        balance = locked[available.key].balance_minor
        if request.amount_minor > balance:
            raise InsufficientFundsError(
                f"only {balance} minor units are available in {request.bucket}",
                {"amount_minor": [f"At most {balance} is available."], "available_minor": balance})
        row = Withdrawal(id=new_id("wdr"), member_id=member_id, bucket=request.bucket, purpose=request.purpose,
                         currency=request.currency, amount_minor=request.amount_minor, payee=request.payee,
                         tax_year=tax_year, status="held", created_at=now)
        session.add(row)
        session.flush()
        post(session, [NewTransaction(
            kind="withdrawal_held", currency=request.currency, effective_at=now, memo=f"withdrawal {row.id}",
            legs=[Leg(available, request.amount_minor), Leg(held, -request.amount_minor)])], now)
        return row

    return db.transaction(run)


def _transition(db: Database, principal: Principal, withdrawal_id: str, to: str, now: datetime) -> Withdrawal:
    def run(session: Session) -> Withdrawal:
        row = load_withdrawal(session, principal, withdrawal_id)
        held = member_account(row.member_id, row.bucket, "held", row.currency)
        back = member_account(row.member_id, row.bucket, "available", row.currency)
        lock_accounts(session, [held, back])
        session.refresh(row, with_for_update=True)
        if row.status != "held":
            raise ConflictError(f"the withdrawal is {row.status}, not held", {"status": [row.status]})
        target = cash("bank", row.currency) if to == "completed" else back
        post(session, [NewTransaction(
            kind="withdrawal_completed" if to == "completed" else "withdrawal_cancelled", currency=row.currency,
            effective_at=now, memo=f"withdrawal {row.id}",
            legs=[Leg(held, row.amount_minor), Leg(target, -row.amount_minor)])], now)
        row.status = to
        if to == "completed":
            row.completed_at = now
        else:
            row.cancelled_at = now
        return row

    return db.transaction(run)


def complete_withdrawal(db: Database, principal: Principal, withdrawal_id: str, now: datetime) -> Withdrawal:
    """The money leaves (administrators): ``held`` to ``cash:bank``. ConflictError unless held."""
    return _transition(db, principal, withdrawal_id, "completed", now)


def cancel_withdrawal(db: Database, principal: Principal, withdrawal_id: str, now: datetime) -> Withdrawal:
    """Back to available (administrators, or the member while held). ConflictError unless held."""
    return _transition(db, principal, withdrawal_id, "cancelled", now)


def load_withdrawal(session: Session, principal: Principal, withdrawal_id: str) -> Withdrawal:
    """The withdrawal in the caller's scope; NotFoundError otherwise."""
    row = session.scalar(select(Withdrawal).where(col(Withdrawal.id) == withdrawal_id))
    if row is None:
        raise NotFoundError("withdrawal not found")
    principal.require_member(row.member_id, "withdrawal")
    return row


def get_withdrawal(db: Database, principal: Principal, withdrawal_id: str) -> Withdrawal:
    """One withdrawal in scope."""
    return db.read(lambda s: load_withdrawal(s, principal, withdrawal_id))


def list_withdrawals(db: Database, principal: Principal, member_id: str, limit: int, cursor: str | None,
                     status: str | None = None) -> Page[Withdrawal]:
    """A member's withdrawals, newest first."""

    def run(session: Session) -> Page[Withdrawal]:
        load_member(session, principal, member_id)
        query = select(Withdrawal).where(col(Withdrawal.member_id) == member_id)
        if status is not None:
            query = query.where(col(Withdrawal.status) == status)
        return paginate(session, query, Withdrawal.seq, limit, cursor)

    return db.read(run)


def create_limit(db: Database, fields: dict[str, Any], now: datetime) -> WithdrawalLimit:
    """Record a yearly limit ``{bucket, purpose, tax_year, limit_minor, currency, coverage?, catch_up}``.

    ValidationError for a purpose not of the bucket, or a coverage on a limit other than
    ``hsa_transfer``; ConflictError when that bucket, purpose, year and coverage has one.
    """
    check_purpose(fields["bucket"], fields["purpose"])
    exponent(fields["currency"])
    coverage = fields.get("coverage")
    if coverage is not None and fields["purpose"] != "hsa_transfer":
        raise ValidationError("only an HSA limit depends on coverage",
                              {"coverage": ["Only for purpose hsa_transfer."]})
    ages = [c["min_age"] for c in fields.get("catch_up", [])]
    if len(set(ages)) != len(ages):
        raise ValidationError("two catch-ups from the same age", {"catch_up": ["Ages must differ."]})

    def run(session: Session) -> WithdrawalLimit:
        clash = session.scalar(select(col(WithdrawalLimit.seq)).where(
            col(WithdrawalLimit.bucket) == fields["bucket"], col(WithdrawalLimit.purpose) == fields["purpose"],
            col(WithdrawalLimit.tax_year) == fields["tax_year"],
            col(WithdrawalLimit.coverage_key) == (coverage or "any")))
        if clash is not None:
            raise ConflictError("a limit for this bucket, purpose, year and coverage exists",
                                {"tax_year": ["Already set."]})
        row = WithdrawalLimit(bucket=fields["bucket"], purpose=fields["purpose"], tax_year=fields["tax_year"],
                              currency=fields["currency"], limit_minor=fields["limit_minor"], coverage=coverage,
                              coverage_key=coverage or "any",
                              catch_up_json=json.dumps(sorted(fields.get("catch_up", []), key=lambda c: c["min_age"])),
                              created_at=now)
        session.add(row)
        session.flush()
        return row

    return db.transaction(run)


def list_limits(db: Database, limit: int, cursor: str | None, tax_year: int | None = None) -> Page[WithdrawalLimit]:
    """Limits, newest first; ``tax_year`` filters."""
    query = select(WithdrawalLimit)
    if tax_year is not None:
        query = query.where(col(WithdrawalLimit.tax_year) == tax_year)
    return db.read(lambda s: paginate(s, query, WithdrawalLimit.seq, limit, cursor))


def present_limit(row: WithdrawalLimit) -> dict[str, Any]:
    """A limit as the API shows it."""
    return {"id": row.seq, "bucket": row.bucket, "purpose": row.purpose, "tax_year": row.tax_year,
            "currency": row.currency, "limit_minor": row.limit_minor, "coverage": row.coverage,
            "catch_up": json.loads(row.catch_up_json), "created_at": row.created_at}
