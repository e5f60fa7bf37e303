"""Keyset pagination on a table's integer ``seq`` (API.md "Lists": newest first).

The cursor is the ``seq`` of the last row served, encoded; rows inserted while a client
pages have larger ``seq`` values, so rows that existed at the first page are each served
exactly once.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Select
from sqlalchemy.orm import Session

from ledger.errors import ValidationError

T = TypeVar("T")


@dataclass
class Page(Generic[T]):
    """One page: ``data`` newest first, ``has_more`` and the opaque ``next_cursor``."""

    data: list[T]
    has_more: bool
    next_cursor: str | None


def encode_cursor(seq: int) -> str:
    """The opaque cursor for a row's ``seq``."""
    return base64.urlsafe_b64encode(f"s{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The ``seq`` a cursor names; raises ValidationError (field ``cursor``) when malformed."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        if not (text.startswith("s") and text[1:].isdigit() and len(text) < 20):
            raise ValueError(text)
        return int(text[1:])
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationError("invalid cursor", {"cursor": ["Not a valid cursor."]}) from exc


def paginate(session: Session, query: Select[Any], seq_column: Any, limit: int, cursor: str | None) -> Page[Any]:
    """Run ``query`` (selecting ORM rows) newest first from ``cursor``, ``limit`` rows."""
    if cursor is not None:
        query = query.where(seq_column < decode_cursor(cursor))
    rows = list(session.scalars(query.order_by(seq_column.desc()).limit(limit + 1)))
    has_more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(rows[-1].seq) if has_more and rows else None
    return Page(rows, has_more, next_cursor)
