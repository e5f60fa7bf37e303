"""Withdrawals, yearly limits, statements and tax summaries (API.md)."""

from __future__ import annotations

from typing import Any

from flask import Response, request

from api.blueprint import Blueprint
from api.context import db, now, require_role, roles, state, today
from api.presenters import page
from ledger.errors import ValidationError
from ledger.services import statements, withdrawals
from schemas.common import EmptySchema, page_of
from schemas.withdrawals import (
    LimitQuery,
    StatementOut,
    StatementQuery,
    TaxSummaryOut,
    WithdrawalIn,
    WithdrawalLimitIn,
    WithdrawalLimitOut,
    WithdrawalOut,
    WithdrawalQuery,
)

blp = Blueprint("withdrawals", __name__, url_prefix="/v1", description="Withdrawals, limits and statements")


@blp.route("/members/<string:member_id>/withdrawals", methods=["POST"])
@roles("admin", "member")
@blp.arguments(WithdrawalIn)
@blp.response(201, WithdrawalOut)
def create_withdrawal(body: dict[str, Any], member_id: str) -> Any:
    """Hold money for a withdrawal: over a yearly limit 422 ``limit_exceeded`` (with
    ``errors.max_allowed_minor``), over the available balance 409 ``insufficient_funds``."""
    caller = require_role("admin", "member")
    return withdrawals.create_withdrawal(db(), caller, member_id, withdrawals.WithdrawalRequest(**body), today(),
                                         now())


@blp.route("/members/<string:member_id>/withdrawals", methods=["GET"])
@roles("admin", "member")
@blp.arguments(WithdrawalQuery, location="query", error_status_code=400)
@blp.response(200, page_of(WithdrawalOut, "WithdrawalPage"))
def list_withdrawals(query: dict[str, Any], member_id: str) -> Any:
    """The member's withdrawals, newest first; ``?status=``."""
    caller = require_role("admin", "member")
    return page(withdrawals.list_withdrawals(db(), caller, member_id, query["limit"], query["cursor"],
                                             query.get("status")))


@blp.route("/withdrawals/<string:withdrawal_id>", methods=["GET"])
@roles("admin", "member")
@blp.response(200, WithdrawalOut)
def get_withdrawal(withdrawal_id: str) -> Any:
    """One withdrawal."""
    return withdrawals.get_withdrawal(db(), require_role("admin", "member"), withdrawal_id)


@blp.route("/withdrawals/<string:withdrawal_id>/complete", methods=["POST"])
@roles("admin")
@blp.arguments(EmptySchema, required=False)
@blp.response(200, WithdrawalOut)
def complete(_body: dict[str, Any], withdrawal_id: str) -> Any:
    """The money leaves; from any status but ``held``: 409."""
    return withdrawals.complete_withdrawal(db(), require_role("admin"), withdrawal_id, now())


@blp.route("/withdrawals/<string:withdrawal_id>/cancel", methods=["POST"])
@roles("admin", "member")
@blp.arguments(EmptySchema, required=False)
@blp.response(200, WithdrawalOut)
def cancel(_body: dict[str, Any], withdrawal_id: str) -> Any:
    """Back to available (the member may cancel their own while held); otherwise 409."""
    return withdrawals.cancel_withdrawal(db(), require_role("admin", "member"), withdrawal_id, now())


@blp.route("/withdrawal-limits", methods=["POST"])
@roles("admin")
@blp.arguments(WithdrawalLimitIn)
@blp.response(201, WithdrawalLimitOut)
def create_limit(body: dict[str, Any]) -> Any:
    """A yearly limit per bucket, purpose and tax year, with catch-up by age (and coverage for HSA)."""
    require_role("admin")
    fields = {**body, "currency": body.get("currency") or state().settings.currency}
    return withdrawals.present_limit(withdrawals.create_limit(db(), fields, now()))


@blp.route("/withdrawal-limits", methods=["GET"])
@roles("admin")
@blp.arguments(LimitQuery, location="query", error_status_code=400)
@blp.response(200, page_of(WithdrawalLimitOut, "WithdrawalLimitPage"))
def list_limits(query: dict[str, Any]) -> Any:
    """Limits, newest first; ``?tax_year=``."""
    require_role("admin")
    return page(withdrawals.list_limits(db(), query["limit"], query["cursor"], query.get("tax_year")),
                withdrawals.present_limit)


@blp.route("/members/<string:member_id>/statements/<string:month>", methods=["GET"])
@roles("admin", "member")
@blp.arguments(StatementQuery, location="query", error_status_code=400)
@blp.response(200, StatementOut)
@blp.alt_response(200, description="With `Accept: text/csv`: the same statement as CSV", content_type="text/csv")
def get_statement(query: dict[str, Any], member_id: str, month: str) -> Any:
    """A month's statement: opening, entries and closing per bucket and balance; totals by contributor."""
    caller = require_role("admin", "member")
    settings = state().settings
    body = statements.statement(db(), caller, member_id, month, query.get("currency") or settings.currency,
                                settings.timezone, today())
    if request.accept_mimetypes.best_match(["application/json", "text/csv"]) == "text/csv":
        return Response(statements.statement_csv(body), mimetype="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="statement-{member_id}-{month}.csv"'})
    return body


@blp.route("/members/<string:member_id>/tax-summaries/<string:year>", methods=["GET"])
@roles("admin", "member")
@blp.arguments(StatementQuery, location="query", error_status_code=400)
@blp.response(200, TaxSummaryOut)
def get_tax_summary(query: dict[str, Any], member_id: str, year: str) -> Any:
    """A year (``YYYY``) for tax time: what each contributor paid in, interest, withdrawals."""
    caller = require_role("admin", "member")
    settings = state().settings
    if len(year) != 4 or not (year.isascii() and year.isdigit()):
        raise ValidationError("year must be YYYY", {"year": ["Must be YYYY."]})
    return statements.tax_summary(db(), caller, member_id, int(year), query.get("currency") or settings.currency,
                                  settings.timezone, today())
