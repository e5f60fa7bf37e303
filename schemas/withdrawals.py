"""Withdrawals, their yearly limits and member statements on the wire (API.md)."""

from __future__ import annotations

import re
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates

from schemas.common import ListQuery, StrictSchema
from schemas.fields import Currency, Minor, StrictInteger, Text, Timestamp
from schemas.ledger import EntryOut

BUCKET_NAMES = ("healthcare", "retirement", "training")
PURPOSE_NAMES = ("premium", "medical_expense", "hsa_transfer", "ira_transfer", "tuition")


class WithdrawalIn(StrictSchema):
    """``{bucket, amount_minor, currency, purpose, payee}``; payee: free text, 1-200 characters."""

    bucket = fields.String(required=True, validate=validate.OneOf(BUCKET_NAMES))
    amount_minor = Minor(required=True)
    currency = Currency(required=True)
    purpose = fields.String(required=True, validate=validate.OneOf(PURPOSE_NAMES))
    payee = Text(1, 200, required=True)

    @validates("payee")
    def _payee_has_text(self, value: str, **_: Any) -> None:
        if not value.strip():
            raise ValidationError("Must not be blank.")


class WithdrawalOut(Schema):
    """A withdrawal: ``held``, ``completed`` or ``cancelled``."""

    id = fields.String()
    member_id = fields.String()
    bucket = fields.String()
    purpose = fields.String()
    currency = fields.String()
    amount_minor = fields.Integer()
    payee = fields.String()
    tax_year = fields.Integer()
    status = fields.String()
    created_at = Timestamp()
    completed_at = Timestamp(allow_none=True)
    cancelled_at = Timestamp(allow_none=True)


class WithdrawalQuery(ListQuery):
    """``?status=`` plus paging."""

    status = fields.String(validate=validate.OneOf(("held", "completed", "cancelled")))


class CatchUpSchema(StrictSchema):
    """Extra room from an age on."""

    min_age = StrictInteger(0, 150, required=True)
    extra_minor = Minor(0, required=True)


class WithdrawalLimitIn(StrictSchema):
    """``{bucket, purpose, tax_year, limit_minor, currency?, coverage?, catch_up}``."""

    bucket = fields.String(required=True, validate=validate.OneOf(BUCKET_NAMES))
    purpose = fields.String(required=True, validate=validate.OneOf(PURPOSE_NAMES))
    tax_year = StrictInteger(1900, 9999, required=True)
    limit_minor = Minor(0, required=True)
    currency = Currency()
    coverage = fields.String(validate=validate.OneOf(("self_only", "family")), allow_none=True)
    catch_up = fields.List(fields.Nested(CatchUpSchema), load_default=list, validate=validate.Length(0, 20))


class CatchUpOut(Schema):
    """Extra room from an age on."""

    min_age = fields.Integer()
    extra_minor = fields.Integer()


class WithdrawalLimitOut(Schema):
    """A yearly limit."""

    id = fields.Integer()
    bucket = fields.String()
    purpose = fields.String()
    tax_year = fields.Integer()
    currency = fields.String()
    limit_minor = fields.Integer()
    coverage = fields.String(allow_none=True)
    catch_up = fields.List(fields.Nested(CatchUpOut))
    created_at = Timestamp()


YEAR_TEXT = re.compile(r"[0-9]{4}")


class YearQuery(fields.Integer):
    """A year in a query string: exactly four ASCII digits, 1900-9999 (a query value is text,
    so the JSON-body ``StrictInteger`` would refuse every value)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(validate=validate.Range(1900, 9999), **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if not isinstance(value, str) or not YEAR_TEXT.fullmatch(value):
            raise ValidationError("Must be a year written YYYY.")
        return int(value)


class LimitQuery(ListQuery):
    """``?tax_year=`` (YYYY) plus paging."""

    tax_year = YearQuery()


class StatementQuery(StrictSchema):
    """``?currency=`` (default ``PBL_CURRENCY``)."""

    currency = Currency()


class StatementBucket(Schema):
    """Opening and closing balances of one bucket."""

    opening_pending_minor = fields.Integer()
    opening_available_minor = fields.Integer()
    opening_held_minor = fields.Integer()
    closing_pending_minor = fields.Integer()
    closing_available_minor = fields.Integer()
    closing_held_minor = fields.Integer()


class ContributorTotal(Schema):
    """What one contributor (null: the member) put in."""

    contributor_id = fields.String(allow_none=True)
    amount_minor = fields.Integer()


class StatementOut(Schema):
    """API.md "Statement": opening plus the month's entries equals closing, per bucket and balance."""

    member_id = fields.String()
    month = fields.String()
    currency = fields.String()
    buckets = fields.Dict(keys=fields.String(), values=fields.Nested(StatementBucket))
    entries = fields.List(fields.Nested(EntryOut))
    totals_by_contributor = fields.List(fields.Nested(ContributorTotal))


class WithdrawalTotal(Schema):
    """Withdrawals of one bucket and purpose in the year."""

    bucket = fields.String()
    purpose = fields.String()
    completed_minor = fields.Integer()
    held_minor = fields.Integer()


class TaxSummaryOut(Schema):
    """A year for tax time: contributions per contributor, interest, withdrawals."""

    member_id = fields.String()
    year = fields.Integer()
    currency = fields.String()
    totals_by_contributor = fields.List(fields.Nested(ContributorTotal))
    interest_minor = fields.Integer()
    withdrawals = fields.List(fields.Nested(WithdrawalTotal))
