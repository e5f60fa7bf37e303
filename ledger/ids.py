"""Ids the ledger makes: a prefix naming the resource, then random letters (API.md)."""

from __future__ import annotations

import secrets

PREFIXES = frozenset(
    {"mem", "ctb", "rem", "fnd", "wdr", "txn", "ent", "rec", "run", "key", "lnk"}
)


def new_id(prefix: str) -> str:
    """Return ``<prefix>_<20 hex digits>``; ``prefix`` must be one of ``PREFIXES``."""
    assert prefix in PREFIXES, f"unknown id prefix {prefix!r}"
    return f"{prefix}_{secrets.token_hex(10)}"
