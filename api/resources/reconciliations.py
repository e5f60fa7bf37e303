"""Reconciliation reports: run one now, read the stored ones (API.md)."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields

from api.blueprint import Blueprint
from api.context import db, gateway, require_role, roles, state, today
from api.presenters import page
from jobs.reconciliation import run_reconciliation
from ledger.services import reconciliation
from schemas.common import EmptySchema, ListQuery, page_of
from schemas.fields import Timestamp

blp = Blueprint("reconciliations", __name__, url_prefix="/v1", description="Reconciliation")


class ReconciliationOut(Schema):
    """A stored report: remittances by currency and status (counts and amounts), each
    closed remittance's status, ledger totals against Stripe's, what moved since the last
    report, ``exceptions`` to act on, the ledger's checks, and ``ok``."""

    id = fields.String()
    status = fields.String()
    ok = fields.Boolean()
    started_at = Timestamp()
    finished_at = Timestamp()
    period = fields.Dict()
    stripe = fields.Dict()
    remittances = fields.List(fields.Dict())
    remittance_statuses = fields.List(fields.Dict())
    totals = fields.List(fields.Dict())
    payouts = fields.List(fields.Dict())
    activity = fields.List(fields.Dict())
    exceptions = fields.List(fields.Dict())
    checks = fields.List(fields.Dict())


@blp.route("/reconciliations", methods=["POST"])
@roles("admin")
@blp.arguments(EmptySchema, required=False)
@blp.response(201, ReconciliationOut)
def run(_body: dict[str, Any]) -> Any:
    """Reconcile now (Stripe too when configured) and store the report."""
    require_role("admin")
    row = run_reconciliation(db(), state().clock, gateway(), today())
    return reconciliation.present(row)


@blp.route("/reconciliations", methods=["GET"])
@roles("admin")
@blp.arguments(ListQuery, location="query", error_status_code=400)
@blp.response(200, page_of(ReconciliationOut, "ReconciliationPage"))
def list_reports(query: dict[str, Any]) -> Any:
    """Stored reports, newest first."""
    require_role("admin")
    return page(reconciliation.list_reconciliations(db(), query["limit"], query["cursor"]), reconciliation.present)


@blp.route("/reconciliations/<string:reconciliation_id>", methods=["GET"])
@roles("admin")
@blp.response(200, ReconciliationOut)
def get_report(reconciliation_id: str) -> Any:
    """One stored report."""
    require_role("admin")
    return reconciliation.present(reconciliation.get_reconciliation(db(), reconciliation_id))
