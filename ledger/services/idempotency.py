"""``Idempotency-Key`` records (API.md "Conventions"; DESIGN.md "Concurrency").

A record is claimed in its own short transaction ("in progress", with a one-minute
lease), then holds the answer (status and body) once the request ends below 500, or is
released when it ends at 500 or above so that a retry runs again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session
from sqlmodel import col

from ledger.db import Database
from ledger.tables import IdempotencyRecord

LEASE = timedelta(minutes=1)


@dataclass(frozen=True)
class Claim:
    """The outcome of claiming a key.

    ``outcome``: ``claimed`` (run the request; ``seq`` names the record), ``replay``
    (return ``status`` and ``body``), ``mismatch`` (the key was used with another
    request), ``in_progress`` (the first request is still running).
    """

    outcome: str
    seq: int | None = None
    status: int | None = None
    body: str | None = None


def claim(db: Database, api_key_id: str, idem_key: str, method: str, path: str, request_hash: str,
          now: datetime) -> Claim:
    """Claim ``idem_key`` for this request, or say why it cannot run."""

    def run(session: Session) -> Claim:
        row = session.scalar(
            select(IdempotencyRecord).where(
                col(IdempotencyRecord.api_key_id) == api_key_id, col(IdempotencyRecord.idem_key) == idem_key,
                col(IdempotencyRecord.method) == method, col(IdempotencyRecord.path) == path,
            ).with_for_update()
        )
        if row is None:
            row = IdempotencyRecord(api_key_id=api_key_id, idem_key=idem_key, method=method, path=path,
                                    request_hash=request_hash, state="in_progress", created_at=now,
                                    locked_until=now + LEASE)
            session.add(row)
            session.flush()
            return Claim("claimed", row.seq)
        if row.request_hash != request_hash:
            return Claim("mismatch")
        if row.state == "done":
            return Claim("replay", row.seq, row.response_status, row.response_body)
        if row.locked_until > now:
            return Claim("in_progress")
        row.locked_until = now + LEASE
        return Claim("claimed", row.seq)

    return db.transaction(run)


def finish(db: Database, seq: int, status: int, body: str) -> None:
    """Store the answer of a claimed request (status below 500), or release the claim."""

    def run(session: Session) -> None:
        if status >= 500:
            session.execute(delete(IdempotencyRecord).where(col(IdempotencyRecord.seq) == seq))
            return
        row = session.get(IdempotencyRecord, seq)
        if row is not None:
            row.state, row.response_status, row.response_body = "done", status, body

    db.transaction(run)
