"""Contributions and remittances: what platforms push."""

from __future__ import annotations

from typing import Any

from flask import jsonify

from api.blueprint import Blueprint
from api.context import db, gateway, now, require_role, roles, state, today
from api.presenters import contribution, page, remittance
from ledger.services import contributions, funding, payment_intents, remittances
from ledger.services.contributions import ContributionFilters, Report
from schemas.common import EmptySchema, ListQuery, page_of
from schemas.contributions import (
    ContributionOut,
    ContributionQuery,
    DryRunOut,
    FundingIn,
    FundingOut,
    PaymentIntentOut,
    RemittanceIn,
    RemittanceListQuery,
    RemittanceOut,
    RemittanceQuery,
    ReportIn,
    ReversalIn,
    ReversalOut,
)

blp = Blueprint("contributions", __name__, url_prefix="/v1", description="Contributions and remittances")


def _clock() -> contributions.Settings:
    return contributions.Settings(today=today(), now=now(), due_day=state().settings.remittance_due_day)


@blp.route("/contributions", methods=["POST"])
@roles("platform")
@blp.arguments(ReportIn)
@blp.response(201, ContributionOut)
@blp.alt_response(200, schema=ContributionOut, description="The same report again")
def post_contribution(body: dict[str, Any]) -> Any:
    """One earnings report: posts what the plan period now owes beyond what it posted."""
    caller = require_role("platform")
    row, created = contributions.post_report(db(), caller, Report(**body), _clock())
    return contribution(row), 201 if created else 200


@blp.route("/contributions", methods=["GET"])
@roles("admin", "platform")
@blp.arguments(ContributionQuery, location="query", error_status_code=400)
@blp.response(200, page_of(ContributionOut, "ContributionPage"))
def list_contributions(query: dict[str, Any]) -> Any:
    """Contributions in scope; filters ``external_id``, ``worker_ref``, ``remittance_id``, ``period_start``."""
    caller = require_role("admin", "platform")
    filters = ContributionFilters(**{k: v for k, v in query.items() if k not in ("limit", "cursor")})
    return page(contributions.list_contributions(db(), caller, filters, query["limit"], query["cursor"]),
                contribution)


@blp.route("/contributions/<string:contribution_id>", methods=["GET"])
@blp.response(200, ContributionOut)
def get_contribution(contribution_id: str) -> Any:
    """One contribution."""
    return contribution(contributions.get_contribution(db(), require_role("admin", "platform"), contribution_id))


@blp.route("/contributions/<string:contribution_id>/reversal", methods=["POST"])
@roles("admin", "platform")
@blp.arguments(ReversalIn)
@blp.response(201, ReversalOut)
def reverse_contribution(body: dict[str, Any], contribution_id: str) -> Any:
    """Undo one report while none of its period's money is available."""
    caller = require_role("admin", "platform")
    result = contributions.reverse_contribution(db(), caller, contribution_id, body["reason"], _clock())
    replacement = contribution(result.replacement) if result.replacement is not None else None
    return {"reversed": result.reversed, "replacement": replacement}


@blp.route("/remittances/<string:remittance_id>/payment-intents", methods=["POST"])
@roles("admin", "platform")
@blp.arguments(EmptySchema, required=False)
@blp.response(201, PaymentIntentOut)
def create_payment_intent(_body: dict[str, Any], remittance_id: str) -> Any:
    """A Stripe PaymentIntent for what the remittance still owes (an open one for the same amount is reused)."""
    caller = require_role("admin", "platform")
    return payment_intents.remittance_payment_intent(db(), gateway(), caller, remittance_id, now())


@blp.route("/remittances", methods=["POST"])
@roles("platform")
@blp.arguments(RemittanceQuery, location="query", error_status_code=400)
@blp.arguments(RemittanceIn)
@blp.response(201, RemittanceOut)
@blp.alt_response(200, schema=DryRunOut, description="dry_run, or the same remittance again")
def post_remittance(query: dict[str, Any], body: dict[str, Any]) -> Any:
    """A batch of earnings reports, all or nothing; ``?dry_run=true`` records nothing."""
    caller = require_role("platform")
    reports = [Report(**line) for line in body["lines"]]
    result = contributions.post_remittance(db(), caller, body["external_id"], body["currency"], reports,
                                           _clock(), dry_run=query["dry_run"])
    if isinstance(result, contributions.DryRunResult):
        # A Response of its own: flask-smorest would dump a dict through RemittanceOut.
        return jsonify(DryRunOut().dump({
            "dry_run": True, "external_id": result.external_id, "currency": result.currency,
            "line_count": result.line_count, "amount_due_minor": result.amount_due_minor,
            "lines": [contribution(c) for c in result.contributions],
        })), 200
    row, created = result
    return remittance(row, today()), 201 if created else 200


@blp.route("/remittances", methods=["GET"])
@roles("admin", "platform")
@blp.arguments(RemittanceListQuery, location="query", error_status_code=400)
@blp.response(200, page_of(RemittanceOut, "RemittancePage"))
def list_remittances(query: dict[str, Any]) -> Any:
    """Remittances in scope; ``?status=``."""
    caller = require_role("admin", "platform")
    day = today()
    result = remittances.list_remittances(db(), caller, query["limit"], query["cursor"], query.get("status"), day)
    return page(result, lambda r: remittance(r, day))


@blp.route("/remittances/<string:remittance_id>", methods=["GET"])
@blp.response(200, RemittanceOut)
def get_remittance(remittance_id: str) -> Any:
    """One remittance, its status derived now."""
    return remittance(remittances.get_remittance(db(), require_role("admin", "platform"), remittance_id), today())


@blp.route("/remittances/<string:remittance_id>/contributions", methods=["GET"])
@roles("admin", "platform")
@blp.arguments(ListQuery, location="query", error_status_code=400)
@blp.response(200, page_of(ContributionOut, "RemittanceContributionPage"))
def list_remittance_contributions(query: dict[str, Any], remittance_id: str) -> Any:
    """A remittance's contributions."""
    caller = require_role("admin", "platform")
    remittances.get_remittance(db(), caller, remittance_id)
    filters = ContributionFilters(remittance_id=remittance_id)
    return page(contributions.list_contributions(db(), caller, filters, query["limit"], query["cursor"]),
                contribution)


@blp.route("/remittances/<string:remittance_id>/fundings", methods=["GET"])
@roles("admin", "platform")
@blp.arguments(ListQuery, location="query", error_status_code=400)
@blp.response(200, page_of(FundingOut, "RemittanceFundingPage"))
def list_remittance_fundings(query: dict[str, Any], remittance_id: str) -> Any:
    """Money received for a remittance."""
    caller = require_role("admin", "platform")
    remittances.get_remittance(db(), caller, remittance_id)
    return page(funding.list_fundings(db(), query["limit"], query["cursor"], remittance_id=remittance_id))


@blp.route("/remittances/<string:remittance_id>/fundings", methods=["POST"])
@roles("admin")
@blp.arguments(FundingIn)
@blp.response(201, FundingOut)
def record_funding(body: dict[str, Any], remittance_id: str) -> Any:
    """Money received outside Stripe: lands in suspense, funds contributions whole, in order."""
    require_role("admin")
    return funding.record_funding(db(), remittance_id, funding.ManualFunding(**body), now())
