"""Earnings reports, remittances, contributions and fundings on the wire (API.md)."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from schemas.catalog import AllocationSchema
from schemas.common import ListQuery, StrictSchema
from schemas.fields import ClientId, Currency, ExactDate, LedgerId, Minor, StrictInteger, Text, Timestamp

MAX_LINES = 10_000


class ReportIn(StrictSchema):
    """One earnings report (API.md "Earnings report"); tips never exceed gross."""

    external_id = ClientId(required=True)
    worker_ref = ClientId(required=True)
    plan_id = ClientId(required=True)
    period_start = ExactDate(required=True)
    period_end = ExactDate(required=True)
    currency = Currency(required=True)
    gross_earnings_minor = Minor(0, required=True)
    tips_minor = Minor(0, load_default=0)
    engaged_minutes = StrictInteger(0, 10**7, load_default=0)
    jobs = StrictInteger(0, 10**6, load_default=0)

    @validates_schema
    def _consistent(self, data: dict[str, Any], **_: Any) -> None:
        errors: dict[str, list[str]] = {}
        if data["tips_minor"] > data["gross_earnings_minor"]:
            errors["tips_minor"] = ["Must not exceed gross_earnings_minor."]
        if data["period_start"] > data["period_end"]:
            errors["period_end"] = ["Must not be before period_start."]
        if errors:
            raise ValidationError(errors)


class RemittanceIn(StrictSchema):
    """``{external_id, currency, lines: [report, ...]}`` with 1 to 10,000 lines."""

    external_id = ClientId(required=True)
    currency = Currency(required=True)
    lines = fields.Nested(ReportIn, many=True, required=True, validate=validate.Length(1, MAX_LINES))


class RemittanceQuery(StrictSchema):
    """``?dry_run=true`` validates and computes without recording."""

    dry_run = fields.Boolean(load_default=False)


class AllocationsOut(Schema):
    """Minor units per bucket."""

    healthcare = fields.Integer()
    retirement = fields.Integer()
    training = fields.Integer()


class ContributionOut(Schema):
    """A contribution (API.md): ``amount_minor`` is what this report added (0 allowed)."""

    id = fields.String()
    kind = fields.String()
    external_id = fields.String(allow_none=True)
    contributor_id = fields.String(allow_none=True)
    member_id = fields.String()
    worker_ref = fields.String(allow_none=True)
    plan_id = fields.String(allow_none=True)
    remittance_id = fields.String()
    currency = fields.String()
    period_start = fields.Date(allow_none=True)
    period_end = fields.Date(allow_none=True)
    gross_earnings_minor = fields.Integer()
    tips_minor = fields.Integer()
    engaged_minutes = fields.Integer()
    jobs = fields.Integer()
    amount_minor = fields.Integer()
    allocations = fields.Nested(AllocationsOut)
    eligible = fields.Boolean()
    status = fields.String()
    created_at = Timestamp()
    available_at = Timestamp(allow_none=True)
    reversed_at = Timestamp(allow_none=True)


class MemberContributionOut(ContributionOut):
    """A member's contribution with its plan period's basis earnings."""

    period_basis_earnings_minor = fields.Integer()


class ContributionQuery(ListQuery):
    """Filters of ``GET /v1/contributions``."""

    external_id = ClientId()
    worker_ref = ClientId()
    remittance_id = LedgerId(validate=validate.Length(1, 40))
    period_start = ExactDate()


class ReversalIn(StrictSchema):
    """``{reason}``."""

    reason = Text(1, 500, required=True)


class ReversalOut(Schema):
    """``{reversed: [ids], replacement: contribution|null}``."""

    reversed = fields.List(fields.String())
    replacement = fields.Nested(ContributionOut, allow_none=True)


class RemittanceOut(Schema):
    """A remittance with its derived status (API.md "Remittance")."""

    id = fields.String()
    external_id = fields.String(allow_none=True)
    contributor_id = fields.String(allow_none=True)
    member_id = fields.String(allow_none=True)
    currency = fields.String()
    status = fields.String()
    line_count = fields.Integer()
    amount_due_minor = fields.Integer()
    amount_funded_minor = fields.Integer()
    short_minor = fields.Integer()
    credit_minor = fields.Integer()
    #: owed again after a refund or lost dispute of money that had made contributions available
    reopened_minor = fields.Integer()
    due_date = fields.Date()
    created_at = Timestamp()


class DryRunOut(Schema):
    """What a remittance would record (nothing was)."""

    dry_run = fields.Boolean()
    external_id = fields.String()
    currency = fields.String()
    line_count = fields.Integer()
    amount_due_minor = fields.Integer()
    lines = fields.List(fields.Nested(lambda: DryRunLineOut()))


class DryRunLineOut(Schema):
    """What one line would add."""

    external_id = fields.String()
    member_id = fields.String()
    worker_ref = fields.String()
    plan_id = fields.String()
    amount_minor = fields.Integer()
    allocations = fields.Nested(AllocationsOut)
    eligible = fields.Boolean()
    status = fields.String()


class RemittanceListQuery(ListQuery):
    """``?status=`` plus paging."""

    status = fields.String(validate=validate.OneOf(
        ["open", "awaiting_funds", "partially_funded", "funded", "overfunded", "overdue"]))


class FundingIn(StrictSchema):
    """Money received outside Stripe: ``{amount_minor, currency, reference, received_at}``."""

    amount_minor = Minor(required=True)
    currency = Currency(required=True)
    reference = Text(1, 200, required=True)
    received_at = Timestamp(required=True)


class FundingApplyIn(StrictSchema):
    """``{remittance_id, amount_minor?}``."""

    remittance_id = LedgerId(required=True, validate=validate.Length(1, 40))
    amount_minor = Minor()


class PaymentIntentOut(Schema):
    """A Stripe PaymentIntent to confirm: ``amount_minor`` is what Stripe will charge."""

    payment_intent_id = fields.String()
    client_secret = fields.String(allow_none=True)
    amount_minor = fields.Integer()
    currency = fields.String()
    remittance_id = fields.String()


class SelfContributionIn(StrictSchema):
    """A member's own contribution: ``{external_id, amount_minor, currency, allocation?}``."""

    external_id = ClientId(required=True)
    amount_minor = Minor(required=True)
    currency = Currency(required=True)
    allocation = fields.Nested(AllocationSchema)


class SelfContributionOut(ContributionOut):
    """The contribution plus the PaymentIntent that pays it (null without Stripe configured)."""

    payment_intent_id = fields.String(allow_none=True)
    client_secret = fields.String(allow_none=True)


class FundingOut(Schema):
    """Money received, and how much of it made contributions available."""

    id = fields.String()
    remittance_id = fields.String(allow_none=True)
    contributor_id = fields.String(allow_none=True)
    currency = fields.String()
    amount_minor = fields.Integer()
    applied_minor = fields.Integer()
    moved_minor = fields.Integer()
    source = fields.String()
    reference = fields.String(allow_none=True)
    returned_minor = fields.Integer()
    applied_from_funding_id = fields.String(allow_none=True)
    status = fields.String()
    received_at = Timestamp()
    created_at = Timestamp()
    reversed_at = Timestamp(allow_none=True)


class FundingQuery(ListQuery):
    """``?unmatched=true`` plus paging."""

    unmatched = fields.Boolean(load_default=False)
