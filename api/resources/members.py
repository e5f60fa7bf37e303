"""Members: accounts, allocation, link codes, enrollments, balances, entries, contributions."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

from api.blueprint import Blueprint
from api.context import db, gateway, now, require_role, roles, state, today
from api.errors import ApiError
from api.presenters import balances as present_balances
from api.presenters import contribution, member, page
from ledger.errors import ValidationError
from ledger.services import contributions, members, payment_intents, reports
from schemas.catalog import (
    AllocationSchema,
    EnrollmentIn,
    EnrollmentOut,
    EnrollmentQuery,
    LinkCodeOut,
    MemberIn,
    MemberOut,
)
from schemas.common import EmptySchema, ListQuery, page_of
from schemas.contributions import MemberContributionOut, SelfContributionIn, SelfContributionOut
from schemas.fields import DATE_TEXT, TIMESTAMP_TEXT
from schemas.ledger import BalanceQuery, BalancesOut, EntryOut, EntryQuery

blp = Blueprint("members", __name__, url_prefix="/v1", description="Members and their accounts")


@blp.route("/members", methods=["POST"])
@roles("admin")
@blp.arguments(MemberIn)
@blp.response(201, MemberOut)
def create_member(body: dict[str, Any]) -> Any:
    """Open a portable account."""
    require_role("admin")
    return member(members.create_member(db(), body, now()))


@blp.route("/members/<string:member_id>", methods=["GET"])
@blp.response(200, MemberOut)
def get_member(member_id: str) -> Any:
    """One member (admin, or the member's own key)."""
    return member(members.get_member(db(), require_role("admin", "member"), member_id))


@blp.route("/members/<string:member_id>/allocation", methods=["PUT"])
@roles("admin", "member")
@blp.arguments(AllocationSchema)
@blp.response(200, MemberOut)
def set_allocation(body: dict[str, int], member_id: str) -> Any:
    """Elect how new contributions split across buckets (basis points summing to 10000)."""
    return member(members.set_allocation(db(), require_role("admin", "member"), member_id, body))


@blp.route("/members/<string:member_id>/link-codes", methods=["POST"])
@roles("admin", "member")
@blp.arguments(EmptySchema, required=False)
@blp.response(201, LinkCodeOut)
def create_link_code(_body: dict[str, Any], member_id: str) -> Any:
    """A single-use code (7 days) a worker gives a platform to link to this account."""
    return members.create_link_code(db(), require_role("admin", "member"), member_id, now())


@blp.route("/enrollments", methods=["POST"])
@roles("admin", "platform")
@blp.arguments(EnrollmentIn)
@blp.response(201, EnrollmentOut)
@blp.alt_response(200, schema=EnrollmentOut, description="The same worker_ref again, same outcome")
def enroll(body: dict[str, Any]) -> Any:
    """Link a platform's worker to a member (a new one without a link code)."""
    caller = require_role("admin", "platform")
    if caller.role == "platform":
        _refuse(body, ("contributor_id", "member_id"), "a platform key enrolls into its own contributor")
        row, created = members.enroll(db(), caller.contributor_id or "", body["worker_ref"], now(),
                                      link_code=body.get("link_code"))
    else:
        _require(body, ("contributor_id", "member_id"))
        _refuse(body, ("link_code",), "an administrator names the member directly")
        row, created = members.enroll(db(), body["contributor_id"], body["worker_ref"], now(),
                                      member_id=body["member_id"])
    return row, 201 if created else 200


def _require(body: dict[str, Any], names: tuple[str, ...]) -> None:
    missing = {n: ["Missing data for required field."] for n in names if n not in body}
    if missing:
        raise ValidationError("missing fields", missing)


def _refuse(body: dict[str, Any], names: tuple[str, ...], why: str) -> None:
    extra = {n: [f"Not allowed: {why}."] for n in names if n in body}
    if extra:
        raise ValidationError("fields not allowed for this key", extra)


@blp.route("/enrollments", methods=["GET"])
@roles("admin", "platform")
@blp.arguments(EnrollmentQuery, location="query", error_status_code=400)
@blp.response(200, page_of(EnrollmentOut, "EnrollmentPage"))
def list_enrollments(query: dict[str, Any]) -> Any:
    """Enrollments in scope; ``?worker_ref=``."""
    caller = require_role("admin", "platform")
    return page(members.list_enrollments(db(), caller, query["limit"], query["cursor"], query.get("worker_ref")))


@blp.route("/members/<string:member_id>/balances", methods=["GET"])
@roles("admin", "member")
@blp.arguments(BalanceQuery, location="query", error_status_code=400)
@blp.response(200, BalancesOut)
def get_balances(query: dict[str, Any], member_id: str) -> Any:
    """Pending, available and held per bucket, now or ``as_of`` (inclusive)."""
    caller = require_role("admin", "member")
    currency = query.get("currency") or state().settings.currency
    as_of = _as_of(query.get("as_of"))
    result = reports.member_balances(db(), caller, member_id, currency, as_of)
    return present_balances(member_id, currency, as_of or now(), result)


def _as_of(text: str | None) -> datetime | None:
    """A date (the end of that business date) or an ISO 8601 timestamp with offset."""
    if text is None:
        return None
    if DATE_TEXT.fullmatch(text):
        try:
            day = datetime.strptime(text, "%Y-%m-%d").date()
        except ValueError as exc:
            raise ApiError(400, "validation_error", "as_of is not a valid date", {"as_of": ["Not a valid date."]}) \
                from exc
        if day > today():
            raise ValidationError("as_of is in the future", {"as_of": ["Must not be in the future."]})
        tz = state().settings.timezone
        end = datetime.combine(day + timedelta(days=1), time(0), tz) - timedelta(microseconds=1)
        return min(end, now())
    if TIMESTAMP_TEXT.fullmatch(text):
        try:
            instant = datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
        except (ValueError, OverflowError):
            instant = None
        if instant is not None:
            if instant > now():
                raise ValidationError("as_of is in the future", {"as_of": ["Must not be in the future."]})
            return instant
    raise ApiError(400, "validation_error", "as_of must be YYYY-MM-DD or an ISO 8601 timestamp with an offset",
                   {"as_of": ["Must be YYYY-MM-DD or an ISO 8601 timestamp with an offset."]})


@blp.route("/members/<string:member_id>/entries", methods=["GET"])
@roles("admin", "member")
@blp.arguments(EntryQuery, location="query", error_status_code=400)
@blp.response(200, page_of(EntryOut, "EntryPage"))
def list_entries(query: dict[str, Any], member_id: str) -> Any:
    """The member's entries, newest first; ``?bucket=``."""
    caller = require_role("admin", "member")
    return page(reports.member_entries(db(), caller, member_id, query["limit"], query["cursor"],
                                       query.get("bucket"), query.get("currency")))


@blp.route("/members/<string:member_id>/contributions", methods=["GET"])
@roles("admin", "member")
@blp.arguments(ListQuery, location="query", error_status_code=400)
@blp.response(200, page_of(MemberContributionOut, "MemberContributionPage"))
def list_member_contributions(query: dict[str, Any], member_id: str) -> Any:
    """The member's contributions, each with ``eligible`` and its period's basis earnings."""
    caller = require_role("admin", "member")
    result = contributions.list_member_contributions(db(), caller, member_id, query["limit"], query["cursor"])
    rows, earnings = result
    shaped = page(rows, contribution)
    for item in shaped["data"]:
        item["period_basis_earnings_minor"] = earnings.get(item["id"], 0)
    return shaped


@blp.route("/members/<string:member_id>/contributions", methods=["POST"])
@roles("admin", "member")
@blp.arguments(SelfContributionIn)
@blp.response(201, SelfContributionOut)
@blp.alt_response(200, schema=SelfContributionOut, description="The same contribution again")
def post_self_contribution(body: dict[str, Any], member_id: str) -> Any:
    """A member's own contribution, pending until its Stripe payment succeeds."""
    caller = require_role("admin", "member")
    result = payment_intents.post_self_contribution(
        db(), gateway(), caller, member_id, payment_intents.SelfContribution(**body), today(),
        state().settings.remittance_due_day, now())
    shaped = contribution(result.contribution)
    shaped["payment_intent_id"] = result.intent.payment_intent_id if result.intent else None
    shaped["client_secret"] = result.intent.client_secret if result.intent else None
    return shaped, 201 if result.created else 200
