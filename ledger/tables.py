"""SQLModel tables: the ledger's rows.

Conventions (DOMAIN.md "Money", STACK.md):
- every amount is an integer number of minor units in a BIGINT column named ``*_minor``;
- every table has an integer surrogate key ``seq`` (pagination, joins) and, where the API
  shows it, a public ``id`` (prefixed ``mem_``, ``ctb_``, ... or chosen by the client);
- timestamps are stored in UTC and come back timezone-aware (``UTCDateTime``).

Entries store signed amounts, debit positive, so a transaction's entries sum to zero.
Accounts cache their balance in their *normal* direction (a liability such as a member's
bucket is positive when the fund owes the member), and every entry stores that balance
after it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Index,
    Integer,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlmodel import Field, SQLModel

#: Integer primary key that autoincrements on both databases (STACK.md: SQLite).
SEQ_TYPE = BigInteger().with_variant(Integer, "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and returned aware (SQLite drops offsets)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _seq() -> Any:
    return Field(default=None, primary_key=True, sa_type=SEQ_TYPE)


def _minor(default: int | None = 0, nullable: bool = False) -> Any:
    return Field(default=default, sa_type=BigInteger, nullable=nullable)


def _ts(nullable: bool = False) -> Any:
    return Field(default=None, sa_type=UTCDateTime, nullable=nullable)


class ApiKey(SQLModel, table=True):
    """An API key: stored as the SHA-256 of the secret, shown to its owner once."""

    __tablename__ = "api_keys"
    seq: int | None = _seq()
    id: str = Field(unique=True, max_length=40)
    key_hash: str = Field(unique=True, max_length=64)
    role: str = Field(max_length=16)
    name: str = Field(max_length=200)
    contributor_id: str | None = Field(default=None, max_length=64)
    member_id: str | None = Field(default=None, max_length=40)
    created_at: datetime = _ts()
    revoked_at: datetime | None = _ts(nullable=True)


class IdempotencyRecord(SQLModel, table=True):
    """One ``Idempotency-Key`` use: claimed while running, then the stored answer."""

    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("api_key_id", "idem_key", "method", "path"),)
    seq: int | None = _seq()
    api_key_id: str = Field(max_length=40)
    idem_key: str = Field(max_length=255)
    method: str = Field(max_length=10)
    path: str = Field(max_length=2000)
    request_hash: str = Field(max_length=64)
    state: str = Field(max_length=16)  # in_progress | done
    response_status: int | None = None
    response_body: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = _ts()
    locked_until: datetime = _ts()


class Contributor(SQLModel, table=True):
    """Who owes contributions: a platform or an employer (DOMAIN.md "Who uses it")."""

    __tablename__ = "contributors"
    seq: int | None = _seq()
    id: str = Field(unique=True, max_length=64)
    name: str = Field(max_length=200)
    kind: str = Field(max_length=16)
    currency: str = Field(max_length=3)
    created_at: datetime = _ts()


class Plan(SQLModel, table=True):
    """A contributor's plan: how much it owes per report and how that is split."""

    __tablename__ = "plans"
    seq: int | None = _seq()
    id: str = Field(unique=True, max_length=64)
    contributor_id: str = Field(foreign_key="contributors.id", index=True, max_length=64)
    basis: str = Field(max_length=32)
    rate_bps: int | None = None
    amount_minor: int | None = _minor(None, nullable=True)
    earnings_basis: str = Field(default="pre_tip", max_length=16)
    period: str = Field(default="month", max_length=16)
    min_earnings_minor: int = _minor()
    eligibility_persists_periods: int = 0
    annual_cap_minor: int | None = _minor(None, nullable=True)
    proration_json: str | None = Field(default=None, sa_type=Text)
    paid_by: str = Field(default="reports", max_length=16)
    allocation_mode: str = Field(default="member_election", max_length=32)
    allocation_healthcare_bps: int
    allocation_retirement_bps: int
    allocation_training_bps: int
    effective_from: date
    created_at: datetime = _ts()


class Member(SQLModel, table=True):
    """A worker's portable account, for life (DOMAIN.md "Who uses it")."""

    __tablename__ = "members"
    seq: int | None = _seq()
    id: str = Field(unique=True, max_length=40)
    display_name: str | None = Field(default=None, max_length=200)
    birth_year: int | None = None
    hsa_coverage: str | None = Field(default=None, max_length=16)
    election_healthcare_bps: int | None = None
    election_retirement_bps: int | None = None
    election_training_bps: int | None = None
    created_at: datetime = _ts()


class Enrollment(SQLModel, table=True):
    """A contributor's ``worker_ref`` linked to a member; unique per contributor."""

    __tablename__ = "enrollments"
    __table_args__ = (UniqueConstraint("contributor_id", "worker_ref"),)
    seq: int | None = _seq()
    contributor_id: str = Field(foreign_key="contributors.id", max_length=64)
    worker_ref: str = Field(max_length=64)
    member_id: str = Field(foreign_key="members.id", index=True, max_length=40)
    created_at: datetime = _ts()


class LinkCode(SQLModel, table=True):
    """A single-use code a member gives a platform to link to their account (7 days)."""

    __tablename__ = "link_codes"
    seq: int | None = _seq()
    id: str = Field(unique=True, max_length=40)
    member_id: str = Field(foreign_key="members.id", max_length=40)
    expires_at: datetime = _ts()
    used_at: datetime | None = _ts(nullable=True)
    used_by_contributor_id: str | None = Field(default=None, max_length=64)
    used_by_worker_ref: str | None = Field(default=None, max_length=64)
    created_at: datetime = _ts()


class MemberPlan(SQLModel, table=True):
    """Lock anchor for one member under one plan: reports of that pair run one at a time."""

    __tablename__ = "member_plans"
    __table_args__ = (UniqueConstraint("member_id", "plan_id"),)
    seq: int | None = _seq()
    member_id: str = Field(max_length=40)
    plan_id: str = Field(max_length=64)


class PeriodAggregate(SQLModel, table=True):
    """A member's reported totals and what was posted, per plan and plan period."""

    __tablename__ = "period_aggregates"
    __table_args__ = (UniqueConstraint("member_id", "plan_id", "period_start"),)
    seq: int | None = _seq()
    member_id: str = Field(max_length=40)
    plan_id: str = Field(max_length=64)
    period_start: date
    period_end: date
    gross_earnings_minor: int = _minor()
    tips_minor: int = _minor()
    engaged_minutes: int = _minor()
    jobs: int = _minor()
    reached_threshold: bool = False
    eligible: bool = False
    posted_minor: int = _minor()


class Remittance(SQLModel, table=True):
    """A batch of contributions a contributor owes, or its open monthly remittance.

    ``kind``: ``batch`` (posted with ``POST /v1/remittances``), ``monthly`` (single
    contributions of one business month), ``self`` (a member's own money).
    """

    __tablename__ = "remittances"
    __table_args__ = (
        UniqueConstraint("contributor_id", "external_id"),
        CheckConstraint("amount_due_minor >= 0", name="ck_remittance_due"),
        CheckConstraint("amount_funded_minor >= 0", name="ck_remittance_funded"),
    )
    seq: int | None = _seq()
    id: str = Field(unique=True, max_length=40)
    external_id: str | None = Field(default=None, max_length=64)
    contributor_id: str | None = Field(default=None, index=True, max_length=64)
    member_id: str | None = Field(default=None, max_length=40)
    currency: str = Field(max_length=3)
    kind: str = Field(max_length=16)
    month: str = Field(max_length=7)
    open_key: str | None = Field(default=None, unique=True, max_length=200)
    request_hash: str | None = Field(default=None, max_length=64)
    line_count: int = 0
    amount_due_minor: int = _minor()
    amount_funded_minor: int = _minor()
    #: owed again after a refund or lost dispute of money that already made
    #: contributions available; money received next pays it first (DOMAIN.md "Funding")
    reopened_minor: int = _minor()
    due_date: date
    closes_on: date
    created_at: datetime = _ts()


class Contribution(SQLModel, table=True):
    """One earnings report and what it added (``amount_minor``, split by bucket).

    ``kind``: ``report`` (from a platform) or ``replacement`` (posted by a reversal).
    ``status``: pending, available or void. ``reversed_at`` marks a report taken out of
    its period's aggregate.
    """

    __tablename__ = "contributions"
    __table_args__ = (
        UniqueConstraint("contributor_id", "external_id"),
        Index("ix_contributions_period", "member_id", "plan_id", "plan_period_start"),
        Index("ix_contributions_remittance", "remittance_id", "seq"),
        # a member's own contributions: external_id unique per member (API.md)
        Index("ux_contributions_self_external", "member_id", "external_id", unique=True,
              sqlite_where=text("contributor_id IS NULL"), postgresql_where=text("contributor_id IS NULL")),
        CheckConstraint("amount_minor >= 0", name="ck_contribution_amount"),
        CheckConstraint(
            "allocation_healthcare_minor + allocation_retirement_minor"
            " + allocation_training_minor = amount_minor",
            name="ck_contribution_split",
        ),
    )
    seq: int | None = _seq()
    id: str = Field(unique=True, max_length=40)
    kind: str = Field(default="report", max_length=16)
    external_id: str | None = Field(default=None, max_length=64)
    contributor_id: str | None = Field(default=None, max_length=64)
    member_id: str = Field(max_length=40)  # searched through ix_contributions_period
    worker_ref: str | None = Field(default=None, max_length=64)
    plan_id: str | None = Field(default=None, max_length=64)
    remittance_id: str = Field(max_length=40)
    currency: str = Field(max_length=3)
    period_start: date | None = None
    period_end: date | None = None
    plan_period_start: date | None = None
    gross_earnings_minor: int = _minor()
    tips_minor: int = _minor()
    engaged_minutes: int = _minor()
    jobs: int = _minor()
    amount_minor: int = _minor()
    allocation_healthcare_minor: int = _minor()
    allocation_retirement_minor: int = _minor()
    allocation_training_minor: int = _minor()
    eligible: bool = True
    status: str = Field(max_length=16)
    request_hash: str | None = Field(default=None, max_length=64)
    reversed_at: datetime | None = _ts(nullable=True)
    reversal_reason: str | None = Field(default=None, max_length=500)
    voided_at: datetime | None = _ts(nullable=True)
    available_at: datetime | None = _ts(nullable=True)
    created_at: datetime = _ts()


class Funding(SQLModel, table=True):
    """Money received for a remittance (or matching none: ``remittance_id`` null).

    ``applied_minor`` is how much of it made contributions available (oldest funding
    first); ``moved_minor`` how much an administrator applied to another remittance.
    """

    __tablename__ = "fundings"
    __table_args__ = (
        CheckConstraint("amount_minor > 0", name="ck_funding_amount"),
        CheckConstraint(
            "applied_minor >= 0 AND moved_minor >= 0 AND applied_minor + moved_minor <= amount_minor",
            name="ck_funding_use",
        ),
        CheckConstraint("returned_minor >= 0 AND returned_minor <= amount_minor", name="ck_funding_returned"),
    )
    seq: int | None = _seq()
    id: str = Field(unique=True, max_length=40)
    remittance_id: str | None = Field(default=None, index=True, max_length=40)
    contributor_id: str | None = Field(default=None, max_length=64)
    currency: str = Field(max_length=3)
    amount_minor: int = _minor()
    applied_minor: int = _minor()
    moved_minor: int = _minor()
    #: given back to the payer: refunded, or taken in a dispute (net of disputes won)
    returned_minor: int = _minor()
    source: str = Field(max_length=16)  # manual | apply | stripe
    reference: str | None = Field(default=None, unique=True, max_length=200)
    applied_from_funding_id: str | None = Field(default=None, max_length=40)
    status: str = Field(default="recorded", max_length=16)  # recorded | reversed
    received_at: datetime = _ts()
    created_at: datetime = _ts()
    reversed_at: datetime | None = _ts(nullable=True)


class Account(SQLModel, table=True):
    """A ledger account in one currency (DESIGN.md "Double entry").

    ``normal`` is ``debit`` (assets, expenses) or ``credit`` (what the fund owes);
    ``balance_minor`` is kept in that direction. Member buckets and suspense never go
    below zero, and the database says so.
    """

    __tablename__ = "accounts"
    __table_args__ = (
        UniqueConstraint("name", "currency"),
        CheckConstraint(
            "kind NOT IN ('member', 'suspense') OR balance_minor >= 0",
            name="ck_account_not_overdrawn",
        ),
        Index("ix_accounts_member", "member_id", "currency"),
    )
    seq: int | None = _seq()
    name: str = Field(max_length=200)
    currency: str = Field(max_length=3)
    kind: str = Field(max_length=32)
    normal: str = Field(max_length=6)
    member_id: str | None = Field(default=None, max_length=40)
    bucket: str | None = Field(default=None, max_length=16)
    state: str | None = Field(default=None, max_length=16)
    contributor_id: str | None = Field(default=None, max_length=64)
    remittance_id: str | None = Field(default=None, max_length=40)
    balance_minor: int = _minor()


class LedgerTransaction(SQLModel, table=True):
    """A ledger transaction: two or more entries in one currency summing to zero."""

    __tablename__ = "ledger_transactions"
    seq: int | None = _seq()
    id: str = Field(unique=True, max_length=40)
    kind: str = Field(max_length=32)
    currency: str = Field(max_length=3)
    contribution_id: str | None = Field(default=None, max_length=40)
    funding_id: str | None = Field(default=None, max_length=40)
    remittance_id: str | None = Field(default=None, max_length=40)
    memo: str | None = Field(default=None, max_length=500)
    effective_at: datetime = _ts()
    created_at: datetime = _ts()


class Entry(SQLModel, table=True):
    """One movement of one account: signed (debit positive), immutable."""

    __tablename__ = "entries"
    __table_args__ = (
        CheckConstraint("amount_minor <> 0", name="ck_entry_nonzero"),
        Index("ix_entries_account", "account_seq", "seq"),
    )
    seq: int | None = _seq()
    id: str = Field(unique=True, max_length=40)
    transaction_id: str = Field(index=True, max_length=40)
    account_seq: int = Field(foreign_key="accounts.seq", sa_type=SEQ_TYPE)
    amount_minor: int = _minor()
    balance_after_minor: int = _minor()
    kind: str = Field(max_length=32)
    contributor_id: str | None = Field(default=None, max_length=64)
    effective_at: datetime = _ts()
    created_at: datetime = _ts()


class StripePayment(SQLModel, table=True):
    """A Stripe PaymentIntent and what the ledger booked of it (DESIGN.md "Stripe").

    ``*_target_minor`` are the largest amounts any Stripe object has shown (received,
    refunded): they only grow, so events applied in any order, or twice, reach the same
    targets. ``*_booked_minor`` is what the ledger has posted; settling posts the
    difference. ``linked`` is false until we know where the money goes: a remittance
    (``remittance_id``), or nowhere (unmatched money, ``remittance_id`` null).
    """

    __tablename__ = "stripe_payments"
    __table_args__ = (
        CheckConstraint("received_booked_minor <= received_target_minor", name="ck_stripe_payment_received"),
        CheckConstraint("refunded_booked_minor <= refunded_target_minor", name="ck_stripe_payment_refunded"),
    )
    seq: int | None = _seq()
    id: str = Field(unique=True, max_length=255)
    linked: bool = False
    remittance_id: str | None = Field(default=None, index=True, max_length=40)
    contribution_id: str | None = Field(default=None, max_length=40)
    currency: str = Field(max_length=3)
    amount_minor: int = _minor()
    status: str = Field(default="", max_length=32)
    charge_id: str | None = Field(default=None, index=True, max_length=255)
    funding_id: str | None = Field(default=None, max_length=40)
    idempotency_key: str | None = Field(default=None, max_length=255)
    received_target_minor: int = _minor()
    received_booked_minor: int = _minor()
    refunded_target_minor: int = _minor()
    refunded_booked_minor: int = _minor()
    #: of what Stripe took back (refunds + disputes lost - disputes won): the part booked as
    #: given back to the payer (at most what was received) and the rest, the fund's loss
    given_back_minor: int = _minor()
    lost_minor: int = _minor()
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class StripeDispute(SQLModel, table=True):
    """A dispute on a Stripe charge: the amounts taken and given back, target and booked."""

    __tablename__ = "stripe_disputes"
    seq: int | None = _seq()
    id: str = Field(unique=True, max_length=255)
    payment_intent_id: str | None = Field(default=None, index=True, max_length=255)
    charge_id: str | None = Field(default=None, max_length=255)
    currency: str = Field(max_length=3)
    amount_minor: int = _minor()
    status: str = Field(default="", max_length=32)
    withdrawn_target_minor: int = _minor()
    withdrawn_booked_minor: int = _minor()
    reinstated_target_minor: int = _minor()
    reinstated_booked_minor: int = _minor()
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class StripePayout(SQLModel, table=True):
    """A payout from the Stripe balance to the bank: ``cash:stripe`` to ``cash:bank``.

    ``sent`` grows to the amount once Stripe says paid (or failed); ``returned`` grows to
    the amount once it says failed; the ledger posts the net of what it has not booked.
    ``transactions_net_minor`` / ``difference_minor``: the payout against the balance
    transactions it covers, filled in by reconciliation.
    """

    __tablename__ = "stripe_payouts"
    seq: int | None = _seq()
    id: str = Field(unique=True, max_length=255)
    currency: str = Field(max_length=3)
    amount_minor: int = _minor()
    status: str = Field(default="", max_length=32)
    sent_target_minor: int = _minor()
    returned_target_minor: int = _minor()
    booked_minor: int = _minor()
    transactions_count: int | None = None
    transactions_net_minor: int | None = _minor(None, nullable=True)
    difference_minor: int | None = _minor(None, nullable=True)
    reconciled_at: datetime | None = _ts(nullable=True)
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class StripeEvent(SQLModel, table=True):
    """A webhook event, stored once by id: a second delivery posts nothing."""

    __tablename__ = "stripe_events"
    seq: int | None = _seq()
    id: str = Field(unique=True, max_length=255)
    type: str = Field(max_length=100)
    object_id: str | None = Field(default=None, max_length=255)
    outcome: str = Field(max_length=32)
    created: datetime | None = _ts(nullable=True)
    received_at: datetime = _ts()


class StripeBalanceTransaction(SQLModel, table=True):
    """A movement of the Stripe balance as reconciliation (or an event) read it.

    ``fee_transaction_id``: the ledger transaction that booked its fee to ``fees``
    (each fee exactly once); ``payout_id``: the payout that carried it to the bank;
    ``matched_to``: the Stripe object it was booked through.
    """

    __tablename__ = "stripe_balance_transactions"
    seq: int | None = _seq()
    id: str = Field(unique=True, max_length=255)
    type: str = Field(max_length=64)
    currency: str = Field(max_length=3)
    amount_minor: int = _minor()
    fee_minor: int = _minor()
    net_minor: int = _minor()
    source_id: str | None = Field(default=None, index=True, max_length=255)
    payout_id: str | None = Field(default=None, index=True, max_length=255)
    created: datetime | None = _ts(nullable=True)
    fee_transaction_id: str | None = Field(default=None, max_length=40)
    #: the payment, dispute or payout it was booked through (null: nothing in the ledger matches it)
    matched_to: str | None = Field(default=None, max_length=255)
    seen_at: datetime = _ts()


class Reconciliation(SQLModel, table=True):
    """One reconciliation run and its stored report (JSON), never changed once written."""

    __tablename__ = "reconciliations"
    seq: int | None = _seq()
    id: str = Field(unique=True, max_length=40)
    status: str = Field(max_length=16)  # succeeded | failed
    stripe_cursor: str | None = Field(default=None, max_length=255)
    report_json: str = Field(sa_type=Text)
    started_at: datetime = _ts()
    finished_at: datetime = _ts()


class CreditingRate(SQLModel, table=True):
    """A bucket's annual crediting rate in basis points from ``effective_from`` (DOMAIN.md "Accrual")."""

    __tablename__ = "crediting_rates"
    __table_args__ = (
        UniqueConstraint("bucket", "effective_from"),
        CheckConstraint("annual_rate_bps >= 0 AND annual_rate_bps <= 100000", name="ck_crediting_rate_bps"),
    )
    seq: int | None = _seq()
    bucket: str = Field(max_length=16)
    annual_rate_bps: int
    effective_from: date
    created_at: datetime = _ts()


class Accrual(SQLModel, table=True):
    """Interest accrued on one member bucket's available balance (DOMAIN.md "Accrual").

    ``last_accrued_date``: the last business date accrued; the month's interest so far is
    ``accrued_minor + carry_numerator / 3,650,000`` minor units, exactly: whole units are
    taken out of the numerator as they form (no rounding), and ``accrued_minor`` is posted
    on the last date of the month; the fraction stays in the carry.
    """

    __tablename__ = "accruals"
    __table_args__ = (
        CheckConstraint("carry_numerator >= 0 AND carry_numerator < 3650000", name="ck_accrual_carry"),
        CheckConstraint("accrued_minor >= 0", name="ck_accrual_accrued"),
        # no index on last_accrued_date: every row changes it daily, and with no indexed column
        # changing (and fillfactor 50, migration 0003) PostgreSQL updates rows in place (HOT)
    )
    seq: int | None = _seq()
    account_seq: int = Field(unique=True, sa_type=SEQ_TYPE)
    member_id: str = Field(max_length=40)
    bucket: str = Field(max_length=16)
    currency: str = Field(max_length=3)
    last_accrued_date: date
    carry_numerator: int = _minor()
    accrued_minor: int = _minor()


class JobRun(SQLModel, table=True):
    """One keyed job run (DESIGN.md "Jobs"): ``{name}:{through}``; a key that succeeded never runs again."""

    __tablename__ = "job_runs"
    seq: int | None = _seq()
    id: str = Field(unique=True, max_length=40)
    key: str = Field(unique=True, max_length=100)
    name: str = Field(max_length=32)
    through: date
    status: str = Field(max_length=16)  # running | succeeded | failed
    attempts: int = 0
    counts_json: str = Field(default="{}", sa_type=Text)
    error: str | None = Field(default=None, max_length=2000)
    lease_until: datetime | None = _ts(nullable=True)
    started_at: datetime = _ts()
    finished_at: datetime | None = _ts(nullable=True)


class SchedulerLease(SQLModel, table=True):
    """Who leads the scheduler on SQLite (PostgreSQL uses an advisory lock instead)."""

    __tablename__ = "scheduler_leases"
    seq: int | None = _seq()
    name: str = Field(unique=True, max_length=64)
    holder: str = Field(max_length=200)
    expires_at: datetime = _ts()


class Withdrawal(SQLModel, table=True):
    """A member spending from a bucket (DOMAIN.md "Withdrawals"): ``held``, then
    ``completed`` (the money left) or ``cancelled`` (back to available)."""

    __tablename__ = "withdrawals"
    __table_args__ = (
        CheckConstraint("amount_minor > 0", name="ck_withdrawal_amount"),
        Index("ix_withdrawals_usage", "member_id", "bucket", "purpose", "tax_year"),
    )
    seq: int | None = _seq()
    id: str = Field(unique=True, max_length=40)
    member_id: str = Field(max_length=40)
    bucket: str = Field(max_length=16)
    purpose: str = Field(max_length=32)
    currency: str = Field(max_length=3)
    amount_minor: int = _minor()
    payee: str = Field(max_length=200)
    tax_year: int
    status: str = Field(max_length=16)  # held | completed | cancelled
    created_at: datetime = _ts()
    completed_at: datetime | None = _ts(nullable=True)
    cancelled_at: datetime | None = _ts(nullable=True)


class WithdrawalLimit(SQLModel, table=True):
    """A yearly limit per bucket and purpose, set by the fund (DOMAIN.md "Withdrawals").

    ``coverage``: for HSA limits, ``self_only`` or ``family`` (null: any member);
    ``catch_up_json``: ``[{"min_age": 50, "extra_minor": 110000}, ...]``, the highest
    reached applies (they do not add up).
    """

    __tablename__ = "withdrawal_limits"
    __table_args__ = (UniqueConstraint("bucket", "purpose", "tax_year", "coverage_key"),)
    seq: int | None = _seq()
    bucket: str = Field(max_length=16)
    purpose: str = Field(max_length=32)
    tax_year: int
    currency: str = Field(max_length=3)
    limit_minor: int = _minor()
    coverage: str | None = Field(default=None, max_length=16)
    #: ``coverage`` or ``"any"``: NULLs are distinct in a unique constraint
    coverage_key: str = Field(max_length=16)
    catch_up_json: str = Field(default="[]", sa_type=Text)
    created_at: datetime = _ts()
