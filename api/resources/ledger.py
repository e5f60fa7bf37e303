"""The ledger itself: trial balance, verify, health."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from api.blueprint import Blueprint
from api.context import db, require_role, roles
from ledger.services import reports
from schemas.common import EmptySchema
from schemas.ledger import TrialBalanceOut, VerifyOut

blp = Blueprint("ledger", __name__, url_prefix="", description="Ledger checks and health")


@blp.route("/v1/ledger/trial-balance", methods=["GET"])
@blp.response(200, TrialBalanceOut)
def trial_balance() -> Any:
    """Per currency: debits, credits, difference (always 0)."""
    require_role("admin")
    return {"currencies": reports.trial_balance(db())}


@blp.route("/v1/ledger/verify", methods=["POST"])
@roles("admin")
@blp.arguments(EmptySchema, required=False)
@blp.response(200, VerifyOut)
def verify(_body: dict[str, Any]) -> Any:
    """The ledger's invariants: transactions balance, balances equal entries."""
    require_role("admin")
    checks = reports.verify(db())
    return {"ok": all(c.ok for c in checks), "checks": checks}


@blp.route("/healthz", methods=["GET"])
@blp.response(200)
@blp.doc(security=[])
def health() -> Any:
    """Alive, and the database answers."""
    db().read(lambda s: s.execute(text("SELECT 1")).scalar())
    return {"status": "ok", "database": db().dialect}
