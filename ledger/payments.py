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

import re
from collections.abc import Mapping
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


#: the largest amount read from a Stripe object (API.md "Conventions": amounts <= 10^12)
MAX_STRIPE_MINOR = 10**12
#: what a Stripe id, status or type may look like: anything else is refused, never stored
SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:\-]{0,254}")
_SAFE_WORD = re.compile(r"[A-Za-z0-9_.\-]{0,64}")


def _refuse(field: str, message: str) -> ValidationError:
    return ValidationError(f"Stripe object: {field} {message}", {field: [message]})


def _currency(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z]{3}", value):
        raise _refuse("currency", "must be a three-letter currency code")
    return value.upper()


def _int(value: Any, field: str, default: int = 0, signed: bool = False) -> int:
    """An amount in minor units, within +-10^12 (>= 0 unless ``signed``)."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise _refuse(field, "must be an integer")
    if abs(value) > MAX_STRIPE_MINOR or (value < 0 and not signed):
        raise _refuse(field, f"must be {'within +-' if signed else 'from 0 to '}{MAX_STRIPE_MINOR}")
    return value


#: Stripe amount = our minor units x scale: Stripe takes ISK (ISO 4217: no decimals) as if it
#: had two, in multiples of 100 (Stripe's currency docs, "special cases")
STRIPE_SCALE: dict[str, int] = {"ISK": 100}


def to_stripe_amount(amount_minor: int, currency: str) -> int:
    """Our minor units as Stripe's amount (``to_stripe_amount(4000, "ISK")`` -> 400,000)."""
    return amount_minor * STRIPE_SCALE.get(currency, 1)


def _amount(currency: str, value: Any, field: str, default: int = 0, signed: bool = False) -> int:
    """A Stripe amount read as our minor units of ``currency`` (bounded, see ``_int``)."""
    scale = STRIPE_SCALE.get(currency, 1)
    stripe_units = _int(value, field, default * scale, signed)
    if stripe_units % scale:
        raise _refuse(field, f"is not a whole minor unit of {currency}")
    return stripe_units // scale


def _id(value: Any, field: str = "id") -> str | None:
    """An id field that Stripe may send as an id or as the expanded object (None when absent)."""
    if isinstance(value, Mapping):
        value = value.get("id")
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not SAFE_ID.fullmatch(value):
        raise _refuse(field, "is not a Stripe id")
    return value


def _required_id(obj: Mapping[str, Any], field: str = "id") -> str:
    found = _id(obj.get(field), field)
    if found is None:
        raise _refuse(field, "is missing")
    return found


def _word(value: Any, field: str) -> str:
    """A status or type: short, plain ASCII."""
    if value is None:
        return ""
    if not isinstance(value, str) or not _SAFE_WORD.fullmatch(value):
        raise _refuse(field, "is not a Stripe status or type")
    return value


def _metadata(value: Any) -> dict[str, str]:
    """Stripe metadata as text; keys or values that are not plain short text are dropped."""
    if not isinstance(value, Mapping):
        return {}
    return {k: v for k, v in value.items() if isinstance(k, str) and isinstance(v, str)
            and len(k) <= 40 and len(v) <= 500 and "\x00" not in k + v and k.isprintable() and v.isprintable()}


def _timestamp(value: Any) -> datetime | None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**33:
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
    cur = _currency(obj.get("currency"))
    amount = _amount(cur, obj.get("amount"), "amount", signed=True)
    fee = _amount(cur, obj.get("fee"), "fee", signed=True)
    return BalanceTransactionInfo(
        id=_required_id(obj), type=_word(obj.get("type"), "type"), currency=cur,
        amount_minor=amount, fee_minor=fee, net_minor=_amount(cur, obj.get("net"), "net", amount - fee, signed=True),
        source_id=_id(obj.get("source"), "source"), created=_timestamp(obj.get("created")),
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
    cur = _currency(obj.get("currency"))
    status = _word(obj.get("status"), "status")
    amount = _amount(cur, obj.get("amount"), "amount")
    received = obj.get("amount_received")
    latest = obj.get("latest_charge")
    charge = charge_from(latest) if isinstance(latest, Mapping) else None
    return PaymentIntentInfo(
        id=_required_id(obj), status=status, currency=cur, amount_minor=amount,
        amount_received_minor=_amount(cur, received, "amount_received") if received is not None else (
            amount if status == "succeeded" else 0),
        metadata=_metadata(obj.get("metadata")),
        client_secret=obj.get("client_secret") if isinstance(obj.get("client_secret"), str) else None,
        charge_id=_id(latest, "latest_charge"), charge=charge,
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
    cur = _currency(obj.get("currency"))
    status = _word(obj.get("status"), "status")
    amount = _amount(cur, obj.get("amount"), "amount")
    captured = obj.get("amount_captured")
    captured_minor = (_amount(cur, captured, "amount_captured") if captured is not None else
                      amount if status == "succeeded" and obj.get("captured", True) else 0)
    refunded = obj.get("amount_refunded")
    refunded_minor = _amount(cur, refunded, "amount_refunded")
    if refunded is None and isinstance(obj.get("refunds"), Mapping):
        refunds = obj["refunds"].get("data") or []
        refunds = refunds if isinstance(refunds, list) else []
        refunded_minor = sum(_amount(cur, r.get("amount"), "refunds") for r in refunds if isinstance(r, Mapping)
                             and r.get("status", "succeeded") == "succeeded")
    bt = obj.get("balance_transaction")
    return ChargeInfo(
        id=_required_id(obj), payment_intent_id=_id(obj.get("payment_intent"), "payment_intent"), status=status,
        currency=cur, amount_minor=amount, amount_captured_minor=captured_minor,
        amount_refunded_minor=refunded_minor, balance_transaction_id=_id(bt, "balance_transaction"),
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
    cur = _currency(obj.get("currency"))
    return RefundInfo(
        id=_required_id(obj), charge_id=_id(obj.get("charge"), "charge"),
        payment_intent_id=_id(obj.get("payment_intent"), "payment_intent"),
        status=_word(obj.get("status"), "status"), currency=cur,
        amount_minor=_amount(cur, obj.get("amount"), "amount"),
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
    cur = _currency(obj.get("currency"))
    status = _word(obj.get("status"), "status")
    amount = _amount(cur, obj.get("amount"), "amount")
    moves: Any = obj.get("balance_transactions") or []
    moves = moves if isinstance(moves, list) else []
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
        id=_required_id(obj), charge_id=_id(obj.get("charge"), "charge"),
        payment_intent_id=_id(obj.get("payment_intent"), "payment_intent"), status=status,
        currency=cur, amount_minor=amount, withdrawn_minor=withdrawn,
        reinstated_minor=reinstated, fee_minor=fee, fee_returned_minor=fee_returned,
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
    cur = _currency(obj.get("currency"))
    return PayoutInfo(
        id=_required_id(obj), status=_word(obj.get("status"), "status"), currency=cur,
        amount_minor=_amount(cur, obj.get("amount"), "amount"), arrival_date=_timestamp(obj.get("arrival_date")),
        balance_transaction_id=_id(obj.get("balance_transaction"), "balance_transaction"),
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
