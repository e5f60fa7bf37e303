"""Members, their allocation election, link codes and enrollments (API.md "Resources")."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session
from sqlmodel import col

from ledger.db import Database
from ledger.errors import ConflictError, NotFoundError, ValidationError
from ledger.ids import new_id
from ledger.pagination import Page, paginate
from ledger.principal import Principal
from ledger.services.catalog import check_allocation
from ledger.tables import Contributor, Enrollment, LinkCode, Member

LINK_CODE_VALIDITY = timedelta(days=7)


def create_member(db: Database, fields: dict[str, Any], now: datetime) -> Member:
    """Open a portable account ``{display_name?, birth_year?, hsa_coverage?}``."""

    def run(session: Session) -> Member:
        row = Member(id=new_id("mem"), created_at=now, **fields)
        session.add(row)
        return row

    return db.transaction(run)


def member_allocation(member: Member) -> dict[str, int] | None:
    """The member's election in basis points, or None when they have made none."""
    if member.election_healthcare_bps is None:
        return None
    return {
        "healthcare": member.election_healthcare_bps,
        "retirement": member.election_retirement_bps or 0,
        "training": member.election_training_bps or 0,
    }


def load_member(session: Session, principal: Principal, member_id: str, lock: bool = False) -> Member:
    """The member row in the caller's scope; NotFoundError otherwise."""
    principal.require_member(member_id)
    query = select(Member).where(col(Member.id) == member_id)
    if lock:
        query = query.with_for_update()
    row = session.scalar(query)
    if row is None:
        raise NotFoundError("member not found")
    return row


def get_member(db: Database, principal: Principal, member_id: str) -> Member:
    """One member: an admin, or the member's own key. Else NotFoundError."""
    return db.read(lambda s: load_member(s, principal, member_id))


def set_allocation(db: Database, principal: Principal, member_id: str, allocation: dict[str, int]) -> Member:
    """Record the member's election (basis points summing to 10,000).

    It applies to contributions posted from now on under ``member_election`` plans
    (DOMAIN.md "Allocation"); what was posted before keeps its split.
    """
    check_allocation(allocation)

    def run(session: Session) -> Member:
        member = load_member(session, principal, member_id, lock=True)
        member.election_healthcare_bps = allocation["healthcare"]
        member.election_retirement_bps = allocation["retirement"]
        member.election_training_bps = allocation["training"]
        return member

    return db.transaction(run)


def create_link_code(db: Database, principal: Principal, member_id: str, now: datetime) -> LinkCode:
    """A single-use code, valid 7 days, that lets a platform link a worker to this member."""

    def run(session: Session) -> LinkCode:
        load_member(session, principal, member_id)
        row = LinkCode(id=new_id("lnk"), member_id=member_id, expires_at=now + LINK_CODE_VALIDITY, created_at=now)
        session.add(row)
        return row

    return db.transaction(run)


def enroll(
    db: Database, contributor_id: str, worker_ref: str, now: datetime,
    link_code: str | None = None, member_id: str | None = None,
) -> tuple[Enrollment, bool]:
    """Link a contributor's ``worker_ref`` to a member; returns (enrollment, created).

    Platform form: ``link_code`` links to the member who issued it, none opens a new
    member. Admin form: ``member_id`` names the member. The same ``worker_ref`` again
    with the same outcome returns the existing enrollment (created False); already
    linked to another member: ConflictError. An unknown, used or expired code, or an
    unknown member: ValidationError on that field.
    """

    def run(session: Session) -> tuple[Enrollment, bool]:
        if session.scalar(select(col(Contributor.seq)).where(col(Contributor.id) == contributor_id)) is None:
            raise ValidationError("unknown contributor", {"contributor_id": ["Unknown contributor."]})
        existing = session.scalar(
            select(Enrollment).where(col(Enrollment.contributor_id) == contributor_id,
                                     col(Enrollment.worker_ref) == worker_ref)
        )
        target = member_id
        if link_code is not None:
            code = session.scalar(select(LinkCode).where(col(LinkCode.id) == link_code))
            if code is None or code.expires_at <= now:
                raise ValidationError("unknown or expired link code", {"link_code": ["Unknown or expired link code."]})
            target = code.member_id
            if existing is None or existing.member_id != target:
                _consume(session, code, contributor_id, worker_ref, now)
        elif target is not None and session.scalar(select(col(Member.seq)).where(col(Member.id) == target)) is None:
            raise ValidationError("unknown member", {"member_id": ["Unknown member."]})
        if existing is not None:
            if target is not None and existing.member_id != target:
                raise ConflictError("worker_ref is already linked to another member",
                                    {"worker_ref": ["Already linked to another member."]})
            return existing, False
        if target is None:
            member = Member(id=new_id("mem"), created_at=now)
            session.add(member)
            session.flush()
            target = member.id
        row = Enrollment(contributor_id=contributor_id, worker_ref=worker_ref, member_id=target, created_at=now)
        session.add(row)
        session.flush()
        return row, True

    return db.transaction(run)


def _consume(session: Session, code: LinkCode, contributor_id: str, worker_ref: str, now: datetime) -> None:
    result = session.execute(
        update(LinkCode)
        .where(col(LinkCode.id) == code.id, col(LinkCode.used_at).is_(None))
        .values(used_at=now, used_by_contributor_id=contributor_id, used_by_worker_ref=worker_ref)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise ValidationError("link code already used", {"link_code": ["This link code was already used."]})


def list_enrollments(
    db: Database, principal: Principal, limit: int, cursor: str | None, worker_ref: str | None = None
) -> Page[Enrollment]:
    """Enrollments in the caller's scope (a platform: its own), newest first."""
    query = select(Enrollment)
    if not principal.is_admin:
        query = query.where(col(Enrollment.contributor_id) == principal.contributor_id)
    if worker_ref is not None:
        query = query.where(col(Enrollment.worker_ref) == worker_ref)
    return db.read(lambda s: paginate(s, query, Enrollment.seq, limit, cursor))
