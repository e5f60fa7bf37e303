"""Fundings: money received, applying it elsewhere, reversing errors."""

from __future__ import annotations

from typing import Any

from api.blueprint import Blueprint
from api.context import db, now, require_role, roles
from api.presenters import page
from ledger.services import funding
from schemas.common import EmptySchema, page_of
from schemas.contributions import FundingApplyIn, FundingOut, FundingQuery

blp = Blueprint("fundings", __name__, url_prefix="/v1", description="Money received")


@blp.route("/fundings", methods=["GET"])
@roles("admin")
@blp.arguments(FundingQuery, location="query", error_status_code=400)
@blp.response(200, page_of(FundingOut, "FundingPage"))
def list_fundings(query: dict[str, Any]) -> Any:
    """All fundings; ``?unmatched=true`` keeps money that matched no remittance."""
    require_role("admin")
    return page(funding.list_fundings(db(), query["limit"], query["cursor"], unmatched=query["unmatched"]))


@blp.route("/fundings/<string:funding_id>", methods=["GET"])
@blp.response(200, FundingOut)
def get_funding(funding_id: str) -> Any:
    """One funding."""
    require_role("admin")
    return funding.get_funding(db(), funding_id)


@blp.route("/fundings/<string:funding_id>/apply", methods=["POST"])
@roles("admin")
@blp.arguments(FundingApplyIn)
@blp.response(200, FundingOut)
def apply_funding(body: dict[str, Any], funding_id: str) -> Any:
    """Apply unmatched money or a remittance's credit to a remittance of the same contributor."""
    require_role("admin")
    return funding.apply_funding(db(), funding_id, body["remittance_id"], body.get("amount_minor"), now())


@blp.route("/fundings/<string:funding_id>/reversal", methods=["POST"])
@roles("admin")
@blp.arguments(EmptySchema, required=False)
@blp.response(201, FundingOut)
def reverse_funding(_body: dict[str, Any], funding_id: str) -> Any:
    """Undo a manual funding recorded in error, while none of its money was used."""
    require_role("admin")
    return funding.reverse_funding(db(), funding_id, now())
