"""``/v1/me`` and ``/v1/api-keys``."""

from __future__ import annotations

from typing import Any

from api.blueprint import Blueprint
from api.context import db, now, principal, require_role, roles
from api.presenters import page
from ledger.services import keys
from schemas.catalog import ApiKeyIn, ApiKeyOut, MeOut
from schemas.common import ListQuery, page_of

blp = Blueprint("keys", __name__, url_prefix="/v1", description="Who am I, and API keys")


@blp.route("/me", methods=["GET"])
@blp.response(200, MeOut)
def me() -> Any:
    """The caller's role and binding."""
    caller = principal()
    return {"role": caller.role, "key_id": caller.key_id, "contributor_id": caller.contributor_id,
            "member_id": caller.member_id}


@blp.route("/api-keys", methods=["POST"])
@roles("admin")
@blp.arguments(ApiKeyIn)
@blp.response(201, ApiKeyOut)
def create_key(body: dict[str, Any]) -> Any:
    """Create a key; its secret is shown once, in ``key``."""
    require_role("admin")
    row, secret = keys.create_key(db(), body["role"], body["name"], now(),
                                  body.get("contributor_id"), body.get("member_id"))
    return {**row.model_dump(), "key": secret}


@blp.route("/api-keys", methods=["GET"])
@roles("admin")
@blp.arguments(ListQuery, location="query", error_status_code=400)
@blp.response(200, page_of(ApiKeyOut, "ApiKeyPage"))
def list_keys(query: dict[str, Any]) -> Any:
    """All keys, newest first."""
    require_role("admin")
    return page(keys.list_keys(db(), query["limit"], query["cursor"]))


@blp.route("/api-keys/<string:key_id>", methods=["DELETE"])
@blp.response(204)
def revoke_key(key_id: str) -> Any:
    """Revoke a key: it answers 401 from then on."""
    require_role("admin")
    keys.revoke_key(db(), key_id, now())
    return ""
