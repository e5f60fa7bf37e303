"""Contributors, plans, API keys, members, enrollments and link codes on the wire."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from schemas.common import ListQuery, StrictSchema
from schemas.fields import ClientId, Currency, ExactDate, LedgerId, Minor, StrictInteger, Text, Timestamp

BPS = 10_000


class AllocationSchema(StrictSchema):
    """Basis points per bucket, summing to 10,000."""

    healthcare = StrictInteger(0, BPS, required=True)
    retirement = StrictInteger(0, BPS, required=True)
    training = StrictInteger(0, BPS, required=True)

    @validates_schema
    def _sums_to_whole(self, data: dict[str, int], **_: Any) -> None:
        if sum(data.values()) != BPS:
            raise ValidationError("Basis points must sum to 10000.", "_schema")


class ContributorIn(StrictSchema):
    """``{id, name, kind: platform|employer, currency}``."""

    id = ClientId(required=True)
    name = Text(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(["platform", "employer"]))
    currency = Currency(required=True)


class ContributorOut(Schema):
    """A contributor."""

    id = fields.String()
    name = fields.String()
    kind = fields.String()
    currency = fields.String()
    created_at = Timestamp()


class TierSchema(StrictSchema):
    """A pro-ration tier: from ``min_minutes`` in the period, ``percent_bps`` of the amount."""

    min_minutes = StrictInteger(0, 10**7, required=True)
    percent_bps = StrictInteger(0, BPS, required=True)


class ProrationSchema(StrictSchema):
    """``{method: linear, full_time_minutes}`` or ``{method: tiers, tiers: [...]}``."""

    method = fields.String(required=True, validate=validate.OneOf(["linear", "tiers"]))
    full_time_minutes = StrictInteger(1, 10**7)
    tiers = fields.List(fields.Nested(TierSchema), validate=validate.Length(1, 20))


class PlanIn(StrictSchema):
    """A plan (API.md "Plan"); business consistency is checked by ``ledger.rules``."""

    id = ClientId(required=True)
    basis = fields.String(required=True, validate=validate.OneOf(
        ["percent_of_earnings", "per_hour", "per_job", "flat_per_period"]))
    rate_bps = StrictInteger(0, BPS)
    amount_minor = Minor()
    earnings_basis = fields.String(validate=validate.OneOf(["pre_tip", "gross"]))
    period = fields.String(validate=validate.OneOf(["month", "quarter"]))
    min_earnings_minor = Minor(0)
    eligibility_persists_periods = StrictInteger(0, 40)
    annual_cap_minor = Minor()
    proration = fields.Nested(ProrationSchema)
    paid_by = fields.String(validate=validate.OneOf(["reports", "schedule"]))
    allocation_mode = fields.String(validate=validate.OneOf(["member_election", "fixed"]))
    allocation = fields.Nested(AllocationSchema, required=True)
    effective_from = ExactDate(required=True)


class PlanOut(Schema):
    """A plan as stored."""

    id = fields.String()
    contributor_id = fields.String()
    basis = fields.String()
    rate_bps = fields.Integer(allow_none=True)
    amount_minor = fields.Integer(allow_none=True)
    earnings_basis = fields.String()
    period = fields.String()
    min_earnings_minor = fields.Integer()
    eligibility_persists_periods = fields.Integer()
    annual_cap_minor = fields.Integer(allow_none=True)
    proration = fields.Dict(allow_none=True)
    paid_by = fields.String()
    allocation_mode = fields.String()
    allocation = fields.Dict(keys=fields.String(), values=fields.Integer())
    effective_from = fields.Date()
    created_at = Timestamp()


class ApiKeyIn(StrictSchema):
    """``{role, contributor_id?, member_id?, name}``."""

    role = fields.String(required=True, validate=validate.OneOf(["admin", "platform", "member"]))
    name = Text(required=True)
    contributor_id = ClientId()
    member_id = LedgerId(validate=validate.Length(1, 40))


class ApiKeyOut(Schema):
    """An API key (never its secret, except ``key`` once on creation)."""

    id = fields.String()
    key = fields.String()
    role = fields.String()
    name = fields.String()
    contributor_id = fields.String(allow_none=True)
    member_id = fields.String(allow_none=True)
    created_at = Timestamp()
    revoked_at = Timestamp(allow_none=True)


class MeOut(Schema):
    """Who the caller is."""

    role = fields.String()
    key_id = fields.String()
    contributor_id = fields.String(allow_none=True)
    member_id = fields.String(allow_none=True)


class MemberIn(StrictSchema):
    """``{display_name?, birth_year?, hsa_coverage?}``."""

    display_name = Text(allow_none=True)
    birth_year = StrictInteger(1900, 2100, allow_none=True)
    hsa_coverage = fields.String(allow_none=True, validate=validate.OneOf(["self_only", "family"]))


class MemberOut(Schema):
    """A member's account."""

    id = fields.String()
    display_name = fields.String(allow_none=True)
    allocation = fields.Dict(keys=fields.String(), values=fields.Integer(), allow_none=True)
    birth_year = fields.Integer(allow_none=True)
    hsa_coverage = fields.String(allow_none=True)
    created_at = Timestamp()


class LinkCodeOut(Schema):
    """A link code: what a worker gives a platform (valid 7 days, single use)."""

    code = fields.String(attribute="id")
    member_id = fields.String()
    expires_at = Timestamp()


class EnrollmentIn(StrictSchema):
    """Platform: ``{worker_ref, link_code?}``; admin: ``{contributor_id, worker_ref, member_id}``."""

    worker_ref = ClientId(required=True)
    link_code = LedgerId(validate=validate.Length(1, 40))
    contributor_id = ClientId()
    member_id = LedgerId(validate=validate.Length(1, 40))


class EnrollmentQuery(ListQuery):
    """``?worker_ref=`` plus paging."""

    worker_ref = ClientId()


class EnrollmentOut(Schema):
    """A worker_ref linked to a member."""

    contributor_id = fields.String()
    worker_ref = fields.String()
    member_id = fields.String()
    created_at = Timestamp()
