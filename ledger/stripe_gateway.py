"""``PaymentsGateway`` over Stripe's API, and the webhook signature check.

DESIGN.md "Stripe": ``StripeGateway`` talks to Stripe (or localstripe in tests) with
``stripe.StripeClient`` and only its ``client.v1.<service>`` namespaces (stripe 16: the
old top-level services are deprecated). Every answer is turned into a plain ``dict``
and read by the ``ledger.payments`` ``*_from`` functions, so the gateway, the webhooks
and the tests share one reading of Stripe's fields.

Amounts are integers in minor units (Stripe's "smallest currency unit", see
``ledger.payments``); currency codes go to Stripe in lower case and come back upper case.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import stripe

from ledger.config import Settings
from ledger.errors import SignatureError, ValidationError
from ledger.payments import (
    BalancePage,
    ChargeInfo,
    DisputeInfo,
    PaymentIntentInfo,
    PaymentsUnavailableError,
    PayoutInfo,
    RefundInfo,
    balance_transaction_from,
    charge_amount,
    charge_from,
    dispute_from,
    payment_intent_from,
    payout_from,
    refund_from,
    to_stripe_amount,
)

if TYPE_CHECKING:
    from stripe.params import BalanceTransactionListParams, PaymentIntentCreateParams

T = TypeVar("T")

#: Seconds to wait for a TCP connection to Stripe, and for its answer.
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 30.0
#: Retries of a request that failed on the network or that Stripe asks to retry (409, 5xx).
MAX_NETWORK_RETRIES = 2
#: Largest page Stripe serves from a list endpoint.
MAX_PAGE = 100

# Anything that looks like a Stripe key or webhook secret, to keep it out of messages.
_SECRET = re.compile(r"\b(?:sk|rk|pk|whsec)_[A-Za-z0-9_*]+")
_NETWORK_ERROR = re.compile(r"Network error: ([A-Za-z]+)")


def _plain(value: Any) -> Any:
    """A StripeObject (or a list of them) as plain ``dict``/``list`` values, recursively."""
    if isinstance(value, stripe.StripeObject):
        return value.to_dict(recursive=True)
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _describe(exc: stripe.StripeError) -> str:
    """A one-line, secret-free account of a Stripe error for PaymentsUnavailableError."""
    parts = [type(exc).__name__]
    if exc.http_status:
        parts.append(f"HTTP {exc.http_status}")
    if exc.code:
        parts.append(f"code {exc.code}")
    text = " ".join(str(exc.user_message or exc).split())
    if isinstance(exc, stripe.APIConnectionError):
        # stripe-python's text is a support notice; keep only the network error's kind
        cause = _NETWORK_ERROR.search(text)
        text = "no answer" + (f" ({cause.group(1)})" if cause else "")
    detail = _SECRET.sub("[redacted]", text)[:300]
    return ", ".join(parts) + (f": {detail}" if detail else "")


class StripeGateway:
    """``ledger.payments.PaymentsGateway`` implemented with ``stripe.StripeClient``.

    ``api_key``: a Stripe secret key (``sk_...``; localstripe takes any ``sk_`` key);
    ``api_base``: the API's base address (``http://127.0.0.1:8420`` for localstripe),
    Stripe's own when None. ``connect_timeout``/``read_timeout`` in seconds;
    ``max_network_retries``: how often stripe-python retries a request that failed on the
    network or that Stripe marks retryable (creates are safe to retry: they carry the
    caller's idempotency key).

    ``allowed_payment_method_types``: when given (e.g. ``("card",)``), new PaymentIntents
    accept only those; by default none is named and Stripe offers the account's dynamic
    payment methods. (stripe 16 pins API version ``2026-10-28.endive``, where the old
    ``payment_method_types`` parameter answers 400 ``payment_method_types_no_longer_supported``;
    localstripe knows neither ``allowed_payment_method_types`` nor
    ``automatic_payment_methods``, so leave this None against localstripe.)

    Every method returns a frozen ``ledger.payments`` value and raises
    ``PaymentsUnavailableError`` when Stripe cannot be reached, times out, refuses the
    request (any ``stripe.StripeError``: 4xx, 5xx, connection errors) or answers with an
    object the ledger cannot read. The message names the operation and the error, never
    the key. Safe to share between threads.
    """

    def __init__(self, api_key: str, api_base: str | None = None, *,
                 connect_timeout: float = CONNECT_TIMEOUT, read_timeout: float = READ_TIMEOUT,
                 max_network_retries: int = MAX_NETWORK_RETRIES,
                 allowed_payment_method_types: Sequence[str] | None = None) -> None:
        if not api_key:
            raise ValueError("StripeGateway needs an API key")
        self.allowed_payment_method_types = (
            None if allowed_payment_method_types is None else list(allowed_payment_method_types))
        http_client = stripe.RequestsClient(timeout=(connect_timeout, read_timeout))
        if api_base:
            self.client = stripe.StripeClient(
                api_key, base_addresses={"api": api_base.rstrip("/")},
                max_network_retries=max_network_retries, http_client=http_client,
            )
        else:
            self.client = stripe.StripeClient(
                api_key, max_network_retries=max_network_retries, http_client=http_client,
            )
        self.api_base = api_base

    def __repr__(self) -> str:
        return f"StripeGateway(api_base={self.api_base!r})"

    def _call(self, action: str, request: Callable[[], Any], read: Callable[[dict[str, Any]], T]) -> T:
        """Run one request, convert its answer to a dict and read it; map every failure."""
        try:
            answer = request()
        except stripe.StripeError as exc:
            raise PaymentsUnavailableError(f"Stripe could not {action}: {_describe(exc)}") from exc
        obj = _plain(answer)
        try:
            if not isinstance(obj, dict):
                raise ValidationError(f"expected an object, got {type(obj).__name__}")
            return read(obj)
        except (ValidationError, KeyError) as exc:
            raise PaymentsUnavailableError(
                f"Stripe answered a request to {action} with an object the ledger cannot read: {exc}"
            ) from exc

    def create_payment_intent(self, amount_minor: int, currency: str, metadata: Mapping[str, str],
                              idempotency_key: str) -> PaymentIntentInfo:
        """Create a PaymentIntent for ``amount_minor`` minor units of ``currency``.

        ``currency``: our upper-case ISO 4217 code (sent to Stripe in lower case);
        ``amount_minor`` must be positive and already a valid charge amount
        (``ledger.payments.charge_amount``: KWD amounts end in 0), else ValidationError
        (or UnknownCurrencyError) before anything is sent. ``metadata``: string pairs
        stored on the intent (Stripe echoes them in every event). ``idempotency_key``:
        Stripe answers a repeat with the first intent instead of creating another.
        Sends ``allowed_payment_method_types`` only when the gateway was given some.
        Returns the new intent (status ``requires_payment_method``, with its client secret).
        """
        code = currency.upper()
        if isinstance(amount_minor, bool) or not isinstance(amount_minor, int) or amount_minor <= 0:
            raise ValidationError(f"a PaymentIntent needs a positive integer amount, not {amount_minor!r}")
        if charge_amount(amount_minor, code) != amount_minor:
            raise ValidationError(f"{amount_minor} is not a valid Stripe amount in {code}")
        params: PaymentIntentCreateParams = {
            "amount": to_stripe_amount(amount_minor, code), "currency": code.lower(),
            "metadata": {str(k): str(v) for k, v in metadata.items()},
        }
        if self.allowed_payment_method_types is not None:
            params["allowed_payment_method_types"] = list(self.allowed_payment_method_types)
        return self._call(
            f"create a PaymentIntent of {amount_minor} {code}",
            lambda: self.client.v1.payment_intents.create(params=params,
                                                          options={"idempotency_key": idempotency_key}),
            payment_intent_from,
        )

    def retrieve_payment_intent(self, payment_intent_id: str) -> PaymentIntentInfo:
        """The PaymentIntent as Stripe has it now, its ``latest_charge`` expanded
        (so ``.charge`` carries the amounts refunded)."""
        return self._call(
            f"retrieve PaymentIntent {payment_intent_id}",
            lambda: self.client.v1.payment_intents.retrieve(payment_intent_id,
                                                            params={"expand": ["latest_charge"]}),
            payment_intent_from,
        )

    def retrieve_charge(self, charge_id: str) -> ChargeInfo:
        """The charge as Stripe has it now (``amount_refunded`` in minor units), its
        ``balance_transaction`` expanded (so ``.balance_transaction`` carries the fee)."""
        return self._call(
            f"retrieve charge {charge_id}",
            lambda: self.client.v1.charges.retrieve(charge_id, params={"expand": ["balance_transaction"]}),
            charge_from,
        )

    def retrieve_refund(self, refund_id: str) -> RefundInfo:
        """The refund as Stripe has it now."""
        return self._call(f"retrieve refund {refund_id}",
                          lambda: self.client.v1.refunds.retrieve(refund_id), refund_from)

    def retrieve_dispute(self, dispute_id: str) -> DisputeInfo:
        """The dispute as Stripe has it now (amounts from its ``balance_transactions``)."""
        return self._call(f"retrieve dispute {dispute_id}",
                          lambda: self.client.v1.disputes.retrieve(dispute_id), dispute_from)

    def retrieve_payout(self, payout_id: str) -> PayoutInfo:
        """The payout as Stripe has it now."""
        return self._call(f"retrieve payout {payout_id}",
                          lambda: self.client.v1.payouts.retrieve(payout_id), payout_from)

    def list_balance_transactions(self, limit: int = MAX_PAGE, starting_after: str | None = None,
                                  payout: str | None = None) -> BalancePage:
        """One page of balance transactions, newest first, at most ``limit`` (1..100).

        ``starting_after``: the last id of the previous page; ``payout``: only the
        transactions paid out by that (automatic) payout. Only the parameters given are
        sent (localstripe refuses any it does not know). Next page:
        ``starting_after=page.data[-1].id`` while ``page.has_more``.
        """
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
            raise ValidationError(f"limit must be an integer from 1 to {MAX_PAGE}, not {limit!r}")
        params: BalanceTransactionListParams = {"limit": limit}
        if starting_after is not None:
            params["starting_after"] = starting_after
        if payout is not None:
            params["payout"] = payout

        def read(obj: dict[str, Any]) -> BalancePage:
            data = obj["data"]
            if not isinstance(data, list):
                raise ValidationError("a list without data")
            return BalancePage(data=[balance_transaction_from(t) for t in data],
                               has_more=bool(obj.get("has_more")))

        return self._call("list balance transactions",
                          lambda: self.client.v1.balance_transactions.list(params=params), read)


def gateway_from_settings(settings: Settings) -> StripeGateway | None:
    """The gateway ``settings`` describe (``PBL_STRIPE_API_KEY``, ``PBL_STRIPE_API_BASE``),
    or None when no API key is set (payments by card are then switched off)."""
    if not settings.stripe_api_key:
        return None
    return StripeGateway(settings.stripe_api_key, settings.stripe_api_base)


def verify_webhook(payload: bytes, signature_header: str | None, secret: str,
                   tolerance: int = 300) -> dict[str, Any]:
    """Check a webhook's ``Stripe-Signature`` header and return the event as a plain dict.

    ``payload``: the raw request body, exactly as received; ``signature_header``: the
    header's value (``t=<unix seconds>,v1=<hex HMAC-SHA256>``, possibly several ``v1``);
    ``secret``: the endpoint's signing secret (``whsec_...``); ``tolerance``: how many
    seconds old the signed timestamp may be (Stripe's default 300).
    Raises SignatureError when the header is missing or malformed, no signature matches
    (wrong secret, changed body), the timestamp is older than ``tolerance``, or the body
    is not UTF-8 JSON holding an object; ValueError when ``secret`` is empty (a
    configuration error, not the sender's). Checked with stripe-python's
    ``WebhookSignature.verify_header`` (what ``Webhook.construct_event`` uses).
    """
    if not secret:
        raise ValueError("verify_webhook needs the endpoint's signing secret")
    if signature_header is not None and not signature_header.isascii():
        raise SignatureError("webhook signature rejected: the Stripe-Signature header is not ASCII")
    try:
        stripe.WebhookSignature.verify_header(payload, signature_header, secret, tolerance)
    except stripe.SignatureVerificationError as exc:
        raise SignatureError(f"webhook signature rejected: {exc.user_message or exc}") from exc
    except (UnicodeDecodeError, TypeError, ValueError) as exc:
        raise SignatureError("webhook signature rejected: unreadable header or body") from exc
    signed_at = [int(part[2:]) for part in (signature_header or "").split(",")
                 if part.startswith("t=") and part[2:].isdigit() and len(part) < 20]
    if signed_at and signed_at[0] > time.time() + tolerance:
        raise SignatureError("webhook signature rejected: its timestamp is in the future")
    try:
        event = json.loads(payload)
    except (ValueError, RecursionError) as exc:
        raise SignatureError("webhook body is not JSON") from exc
    if not isinstance(event, dict):
        raise SignatureError("webhook body is not a JSON object")
    return event
