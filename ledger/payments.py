"""The payments gateway: what the ledger needs from a card processor, as plain values.

DESIGN.md "Stripe": ``ledger`` defines this small protocol; ``ledger.stripe_gateway``
implements it with ``stripe.StripeClient``. Stripe objects (from the API or inside a
webhook event) are read into the frozen dataclasses below by the ``*_from`` functions,
so webhooks, reconciliation and tests share one reading of Stripe's fields.

Amounts: our minor units are Stripe's amounts (USD cents, JPY yen, KWD fils), except that
Stripe wants the last digit of a three-decimal currency's amount to be 0
(``CHARGE_STEP``): a charge is rounded *up* to it and the extra stays with the payer as
credit (DOMAIN.md "Funding": money beyond what is owed is the contributor's credit).
Stripe's currency codes are lower case; ours are upper case.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from ledger.errors import UnavailableError, ValidationError
from ledger.money import exponent

#: Currencies whose Stripe amounts must be a multiple of a step (Stripe: "three-decimal
#: currencies ... the last digit must be 0"). Every other supported currency: step 1.
CHARGE_STEP: dict[str, int] = {"BHD": 10, "JOD": 10, "KWD": 10, "OMR": 10, "TND": 10}

#: PaymentIntent statuses in which the intent may still be paid (and so may be reused).
OPEN_INTENT_STATUSES = frozenset(
    {"requires_payment_method", "requires_confirmation", "requires_action", "processing", "requires_capture"}
)


class PaymentsUnavailableError(UnavailableError):
    """The payment processor could not be reached or answered with an error (503)."""


def charge_amount(amount_minor: int, currency: str) -> int:
    """The amount to ask Stripe for, in minor units: ``amount_minor`` rounded up to ``CHARGE_STEP``.

    ``charge_amount(12345, "KWD")`` -> 12350; ``charge_amount(1000, "JPY")`` -> 1000.
    Raises UnknownCurrencyError for a currency the ledger does not support.
    """
    exponent(currency)
    step = CHARGE_STEP.get(currency, 1)
    return -(-amount_minor // step) * step


def _currency(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValidationError("Stripe object without a currency")
    return value.upper()


def _int(value: Any, default: int = 0) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"Stripe amount is not an integer: {value!r}")
    return value


def _id(value: Any) -> str | None:
    """An id field that Stripe may send as an id or as the expanded object."""
    if isinstance(value, Mapping):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def _metadata(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        return {}
    return {str(k): str(v) for k, v in value.items() if v is not None}


def _timestamp(value: Any) -> datetime | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return datetime.fromtimestamp(value, UTC)


@dataclass(frozen=True)
class BalanceTransactionInfo:
    """One movement of the Stripe balance: ``amount`` gross, ``fee``, ``net = amount - fee``.

    ``type``: ``charge``/``payment``, ``refund``, ``adjustment`` (disputes), ``payout``, ...
    ``source_id``: the charge, refund, dispute or payout behind it.
    """

    id: str
    type: str
    currency: str
    amount_minor: int
    fee_minor: int
    net_minor: int
    source_id: str | None
    created: datetime | None
    reporting_category: str | None = None


def balance_transaction_from(obj: Mapping[str, Any]) -> BalanceTransactionInfo:
    """Read a Stripe ``balance_transaction`` object."""
    amount, fee = _int(obj.get("amount")), _int(obj.get("fee"))
    return BalanceTransactionInfo(
        id=str(obj["id"]), type=str(obj.get("type") or ""), currency=_currency(obj.get("currency")),
        amount_minor=amount, fee_minor=fee, net_minor=_int(obj.get("net"), amount - fee),
        source_id=_id(obj.get("source")), created=_timestamp(obj.get("created")),
        reporting_category=obj.get("reporting_category") if isinstance(obj.get("reporting_category"), str) else None,
    )


@dataclass(frozen=True)
class PaymentIntentInfo:
    """A PaymentIntent: ``amount_received_minor`` is what Stripe says it collected."""

    id: str
    status: str
    currency: str
    amount_minor: int
    amount_received_minor: int
    metadata: dict[str, str]
    client_secret: str | None = None
    charge_id: str | None = None
    #: the latest charge, when the object carried it expanded (localstripe always does)
    charge: ChargeInfo | None = None


def payment_intent_from(obj: Mapping[str, Any]) -> PaymentIntentInfo:
    """Read a Stripe ``payment_intent`` object.

    Stripe sends ``amount_received``; a server that omits it (localstripe) is read as
    having received ``amount`` once the status is ``succeeded``.
    """
    status = str(obj.get("status") or "")
    amount = _int(obj.get("amount"))
    received = obj.get("amount_received")
    latest = obj.get("latest_charge")
    charge = charge_from(latest) if isinstance(latest, Mapping) else None
    return PaymentIntentInfo(
        id=str(obj["id"]), status=status, currency=_currency(obj.get("currency")), amount_minor=amount,
        amount_received_minor=_int(received) if received is not None else (amount if status == "succeeded" else 0),
        metadata=_metadata(obj.get("metadata")),
        client_secret=obj.get("client_secret") if isinstance(obj.get("client_secret"), str) else None,
        charge_id=_id(latest), charge=charge,
    )


@dataclass(frozen=True)
class ChargeInfo:
    """A charge: ``amount_captured_minor`` collected, ``amount_refunded_minor`` given back (both only grow)."""

    id: str
    payment_intent_id: str | None
    status: str
    currency: str
    amount_minor: int
    amount_captured_minor: int
    amount_refunded_minor: int
    balance_transaction_id: str | None
    #: the charge's own balance transaction, when the object carried it expanded
    balance_transaction: BalanceTransactionInfo | None = None
    metadata: dict[str, str] = field(default_factory=dict)


def charge_from(obj: Mapping[str, Any]) -> ChargeInfo:
    """Read a Stripe ``charge`` object (``amount_captured`` defaults to ``amount`` once captured)."""
    status = str(obj.get("status") or "")
    amount = _int(obj.get("amount"))
    captured = obj.get("amount_captured")
    if captured is None:
        captured = amount if status == "succeeded" and obj.get("captured", True) else 0
    refunded = obj.get("amount_refunded")
    if refunded is None and isinstance(obj.get("refunds"), Mapping):
        refunds = obj["refunds"].get("data") or []
        refunded = sum(_int(r.get("amount")) for r in refunds if isinstance(r, Mapping)
                       and r.get("status", "succeeded") == "succeeded")
    bt = obj.get("balance_transaction")
    return ChargeInfo(
        id=str(obj["id"]), payment_intent_id=_id(obj.get("payment_intent")), status=status,
        currency=_currency(obj.get("currency")), amount_minor=amount, amount_captured_minor=_int(captured),
        amount_refunded_minor=_int(refunded), balance_transaction_id=_id(bt),
        balance_transaction=balance_transaction_from(bt) if isinstance(bt, Mapping) else None,
        metadata=_metadata(obj.get("metadata")),
    )


@dataclass(frozen=True)
class RefundInfo:
    """A refund of (part of) a charge."""

    id: str
    charge_id: str | None
    payment_intent_id: str | None
    status: str
    currency: str
    amount_minor: int


def refund_from(obj: Mapping[str, Any]) -> RefundInfo:
    """Read a Stripe ``refund`` object."""
    return RefundInfo(
        id=str(obj["id"]), charge_id=_id(obj.get("charge")), payment_intent_id=_id(obj.get("payment_intent")),
        status=str(obj.get("status") or ""), currency=_currency(obj.get("currency")),
        amount_minor=_int(obj.get("amount")),
    )


#: Dispute statuses in which Stripe has taken the disputed amount from the balance.
WITHDRAWN_DISPUTE_STATUSES = frozenset({"needs_response", "under_review", "won", "lost"})


@dataclass(frozen=True)
class DisputeInfo:
    """A dispute, as four amounts that only grow (DESIGN.md "Stripe": order never matters).

    ``withdrawn_minor``: taken from the balance; ``reinstated_minor``: given back (won);
    ``fee_minor``: dispute fees charged; ``fee_returned_minor``: fees given back.
    Read from the dispute's ``balance_transactions`` when it carries them, else from its
    status (inquiries, ``warning_*``, move no money).
    """

    id: str
    charge_id: str | None
    payment_intent_id: str | None
    status: str
    currency: str
    amount_minor: int
    withdrawn_minor: int
    reinstated_minor: int
    fee_minor: int
    fee_returned_minor: int


def dispute_from(obj: Mapping[str, Any]) -> DisputeInfo:
    """Read a Stripe ``dispute`` object."""
    status = str(obj.get("status") or "")
    amount = _int(obj.get("amount"))
    moves: Sequence[Any] = obj.get("balance_transactions") or []
    txns = [balance_transaction_from(t) for t in moves if isinstance(t, Mapping)]
    if txns:
        withdrawn = sum(-t.amount_minor for t in txns if t.amount_minor < 0)
        reinstated = sum(t.amount_minor for t in txns if t.amount_minor > 0)
        fee = sum(t.fee_minor for t in txns if t.fee_minor > 0)
        fee_returned = sum(-t.fee_minor for t in txns if t.fee_minor < 0)
    else:
        withdrawn = amount if status in WITHDRAWN_DISPUTE_STATUSES else 0
        reinstated = amount if status == "won" else 0
        fee = fee_returned = 0
    return DisputeInfo(
        id=str(obj["id"]), charge_id=_id(obj.get("charge")), payment_intent_id=_id(obj.get("payment_intent")),
        status=status, currency=_currency(obj.get("currency")), amount_minor=amount,
        withdrawn_minor=withdrawn, reinstated_minor=reinstated, fee_minor=fee, fee_returned_minor=fee_returned,
    )


@dataclass(frozen=True)
class PayoutInfo:
    """A payout from the Stripe balance to the fund's bank account."""

    id: str
    status: str
    currency: str
    amount_minor: int
    arrival_date: datetime | None
    balance_transaction_id: str | None = None


def payout_from(obj: Mapping[str, Any]) -> PayoutInfo:
    """Read a Stripe ``payout`` object."""
    return PayoutInfo(
        id=str(obj["id"]), status=str(obj.get("status") or ""), currency=_currency(obj.get("currency")),
        amount_minor=_int(obj.get("amount")), arrival_date=_timestamp(obj.get("arrival_date")),
        balance_transaction_id=_id(obj.get("balance_transaction")),
    )


@dataclass(frozen=True)
class BalancePage:
    """One page of balance transactions, newest first."""

    data: list[BalanceTransactionInfo]
    has_more: bool


class PaymentsGateway(Protocol):
    """What the ledger asks of a payment processor. Every method raises
    PaymentsUnavailableError when the processor cannot be reached or refuses."""

    def create_payment_intent(self, amount_minor: int, currency: str, metadata: Mapping[str, str],
                              idempotency_key: str) -> PaymentIntentInfo:
        """Create a PaymentIntent for ``amount_minor`` (already a valid charge amount)."""
        ...

    def retrieve_payment_intent(self, payment_intent_id: str) -> PaymentIntentInfo:
        """The PaymentIntent as the processor has it now."""
        ...

    def retrieve_charge(self, charge_id: str) -> ChargeInfo:
        """The charge as the processor has it now."""
        ...

    def retrieve_refund(self, refund_id: str) -> RefundInfo:
        """The refund as the processor has it now."""
        ...

    def retrieve_dispute(self, dispute_id: str) -> DisputeInfo:
        """The dispute as the processor has it now."""
        ...

    def retrieve_payout(self, payout_id: str) -> PayoutInfo:
        """The payout as the processor has it now."""
        ...

    def list_balance_transactions(self, limit: int = 100, starting_after: str | None = None,
                                  payout: str | None = None) -> BalancePage:
        """Balance transactions newest first, a page at a time (``payout``: only that payout's)."""
        ...
