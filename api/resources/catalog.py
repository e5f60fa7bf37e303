"""Contributors and plans."""

from __future__ import annotations

from typing import Any

from api.blueprint import Blueprint
from api.context import db, now, require_role, roles
from api.presenters import page
from ledger.services import catalog
from schemas.catalog import ContributorIn, ContributorOut, PlanIn, PlanOut
from schemas.common import ListQuery, page_of

blp = Blueprint("catalog", __name__, url_prefix="/v1", description="Contributors and plans")


@blp.route("/contributors", methods=["POST"])
@roles("admin")
@blp.arguments(ContributorIn)
@blp.response(201, ContributorOut)
def create_contributor(body: dict[str, Any]) -> Any:
    """Create a platform or employer."""
    require_role("admin")
    return catalog.create_contributor(db(), body, now())


@blp.route("/contributors", methods=["GET"])
@roles("admin", "platform")
@blp.arguments(ListQuery, location="query", error_status_code=400)
@blp.response(200, page_of(ContributorOut, "ContributorPage"))
def list_contributors(query: dict[str, Any]) -> Any:
    """Contributors in scope."""
    caller = require_role("admin", "platform")
    return page(catalog.list_contributors(db(), caller, query["limit"], query["cursor"]))


@blp.route("/contributors/<string:contributor_id>", methods=["GET"])
@blp.response(200, ContributorOut)
def get_contributor(contributor_id: str) -> Any:
    """One contributor."""
    return catalog.get_contributor(db(), require_role("admin", "platform"), contributor_id)


@blp.route("/contributors/<string:contributor_id>/plans", methods=["POST"])
@roles("admin")
@blp.arguments(PlanIn)
@blp.response(201, PlanOut)
def create_plan(body: dict[str, Any], contributor_id: str) -> Any:
    """Create a plan; plan ids are unique across contributors."""
    require_role("admin")
    return catalog.plan_fields(catalog.create_plan(db(), contributor_id, body, now()))


@blp.route("/contributors/<string:contributor_id>/plans", methods=["GET"])
@roles("admin", "platform")
@blp.arguments(ListQuery, location="query", error_status_code=400)
@blp.response(200, page_of(PlanOut, "PlanPage"))
def list_plans(query: dict[str, Any], contributor_id: str) -> Any:
    """A contributor's plans."""
    caller = require_role("admin", "platform")
    return page(catalog.list_plans(db(), caller, contributor_id, query["limit"], query["cursor"]), catalog.plan_fields)


@blp.route("/plans/<string:plan_id>", methods=["GET"])
@blp.response(200, PlanOut)
def get_plan(plan_id: str) -> Any:
    """One plan."""
    return catalog.plan_fields(catalog.get_plan(db(), require_role("admin", "platform"), plan_id))


