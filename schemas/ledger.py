"""Balances, entries, the trial balance and verify on the wire."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from schemas.common import ListQuery, StrictSchema
from schemas.fields import Currency, Timestamp


class BalanceQuery(StrictSchema):
    """``?as_of=`` (inclusive; a date means the end of that business date) and ``?currency=``."""

    as_of = fields.String(validate=validate.Length(1, 40))
    currency = Currency()


class StateBalances(Schema):
    """One bucket's balances by state."""

    pending_minor = fields.Integer()
    available_minor = fields.Integer()
    held_minor = fields.Integer()


class BucketBalances(Schema):
    """The three buckets."""

    healthcare = fields.Nested(StateBalances)
    retirement = fields.Nested(StateBalances)
    training = fields.Nested(StateBalances)


class BalancesOut(Schema):
    """``{member_id, currency, as_of, buckets, total}``."""

    member_id = fields.String()
    currency = fields.String()
    as_of = Timestamp()
    buckets = fields.Nested(BucketBalances)
    total = fields.Nested(StateBalances)


class EntryQuery(ListQuery):
    """``?bucket=`` plus paging."""

    bucket = fields.String(validate=validate.OneOf(["healthcare", "retirement", "training"]))
    currency = Currency()


class EntryOut(Schema):
    """An entry on a member's bucket, credits positive."""

    id = fields.String()
    transaction_id = fields.String()
    effective_at = Timestamp()
    bucket = fields.String()
    balance = fields.String()
    kind = fields.String()
    contributor_id = fields.String(allow_none=True)
    amount_minor = fields.Integer()
    balance_after_minor = fields.Integer()


class CurrencyTotals(Schema):
    """One currency's debits and credits."""

    currency = fields.String()
    debits_minor = fields.Integer()
    credits_minor = fields.Integer()
    difference_minor = fields.Integer()


class TrialBalanceOut(Schema):
    """``{currencies: [...]}``: debits equal credits in each."""

    currencies = fields.List(fields.Nested(CurrencyTotals))


class CheckOut(Schema):
    """One invariant."""

    name = fields.String()
    ok = fields.Boolean()
    detail = fields.String()


class VerifyOut(Schema):
    """``{ok, checks: [...]}``."""

    ok = fields.Boolean()
    checks = fields.List(fields.Nested(CheckOut))
