"""API keys: random secrets shown once, stored as SHA-256, revocable (API.md "Authentication")."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlmodel import col

from ledger.db import Database, fetch
from ledger.errors import ValidationError
from ledger.ids import new_id
from ledger.pagination import Page, paginate
from ledger.principal import ROLES, Principal
from ledger.tables import ApiKey, Contributor, Member


def hash_secret(secret: str) -> str:
    """The stored form of a key: hex SHA-256 of its UTF-8 text."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def create_key(
    db: Database, role: str, name: str, now: datetime,
    contributor_id: str | None = None, member_id: str | None = None,
) -> tuple[ApiKey, str]:
    """Create a key; returns the row and the secret (``pbl_<role>_<random>``), shown once.

    A platform key needs an existing ``contributor_id``, a member key an existing
    ``member_id``; an admin key neither. Raises ValidationError otherwise.
    """
    if role not in ROLES:
        raise ValidationError("unknown role", {"role": [f"Must be one of: {', '.join(ROLES)}."]})

    def run(session: Session) -> tuple[ApiKey, str]:
        _check_binding(session, role, contributor_id, member_id)
        secret = f"pbl_{role}_{secrets.token_urlsafe(32)}"
        row = ApiKey(
            id=new_id("key"), key_hash=hash_secret(secret), role=role, name=name,
            contributor_id=contributor_id if role == "platform" else None,
            member_id=member_id if role == "member" else None, created_at=now,
        )
        session.add(row)
        return row, secret

    return db.transaction(run)


def _check_binding(session: Session, role: str, contributor_id: str | None, member_id: str | None) -> None:
    if role == "platform":
        known = contributor_id is not None and session.scalar(
            select(col(Contributor.seq)).where(col(Contributor.id) == contributor_id)) is not None
        if not known:
            raise ValidationError("a platform key needs an existing contributor",
                                  {"contributor_id": ["Unknown contributor."]})
    elif contributor_id is not None:
        raise ValidationError("only a platform key has a contributor",
                              {"contributor_id": ["Not allowed for this role."]})
    if role == "member":
        if member_id is None or session.scalar(select(col(Member.seq)).where(col(Member.id) == member_id)) is None:
            raise ValidationError("a member key needs an existing member", {"member_id": ["Unknown member."]})
    elif member_id is not None:
        raise ValidationError("only a member key has a member", {"member_id": ["Not allowed for this role."]})


def list_keys(db: Database, limit: int, cursor: str | None) -> Page[ApiKey]:
    """All keys, newest first (never their secrets)."""
    return db.read(lambda s: paginate(s, select(ApiKey), ApiKey.seq, limit, cursor))


def revoke_key(db: Database, key_id: str, now: datetime) -> None:
    """Revoke a key: it answers 401 from then on. Raises NotFoundError for an unknown id."""

    def run(session: Session) -> None:
        row = fetch(session, ApiKey, key_id, "api key")
        if row.revoked_at is None:
            row.revoked_at = now

    db.transaction(run)


def authenticate(db: Database, secret: str) -> Principal | None:
    """The principal of an unrevoked key with this secret, else None."""
    digest = hash_secret(secret)

    def run(session: Session) -> Principal | None:
        row = session.scalar(select(ApiKey).where(col(ApiKey.key_hash) == digest, col(ApiKey.revoked_at).is_(None)))
        if row is None:
            return None
        return Principal(row.role, row.id, row.contributor_id, row.member_id)

    return db.read(run)
