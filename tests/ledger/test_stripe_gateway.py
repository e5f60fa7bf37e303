"""StripeGateway and verify_webhook against localstripe, and a recorded stub where it falls short.

Each test's docstring says which it uses: the real localstripe (``stripe_reset``: the
session's server, emptied) or RecordedStripe (recorded Stripe responses) for what
localstripe lacks: fees, ``payout=`` filtering of balance transactions, disputes, USD payouts.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import stripe
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from ledger.config import Settings
from ledger.errors import SignatureError, ValidationError
from ledger.payments import PaymentsUnavailableError, charge_amount
from ledger.stripe_gateway import StripeGateway, gateway_from_settings, verify_webhook
from tests.stripe_support import (
    LOCAL_API_KEY,
    LocalStripe,
    RecordedStripe,
    balance_txn_obj,
    closed_port_url,
    dispute_obj,
    list_obj,
    payment_intent_obj,
    payout_obj,
    signed_event,
    stripe_event,
    stripe_signature,
    wait_for,
)

SECRET = "whsec_test_secret"


@pytest.fixture
def gateway(stripe_reset: LocalStripe) -> StripeGateway:
    """A gateway on the session's (emptied) localstripe."""
    return StripeGateway(LOCAL_API_KEY, stripe_reset.url)


def paid_intent(gateway: StripeGateway, localstripe: LocalStripe, amount: int, currency: str = "USD",
                key: str | None = None) -> str:
    intent = gateway.create_payment_intent(amount, currency, {"remittance_id": "rem_1"}, key or f"k-{amount}")
    assert localstripe.pay(intent.id)["status"] == "succeeded"
    return intent.id


# --------------------------------------------------------------------------- localstripe


def test_usd_intent_is_created_paid_and_read_back(gateway: StripeGateway, stripe_reset: LocalStripe) -> None:
    """localstripe: a USD intent with metadata, paid by card, reads succeeded with 12345 received."""
    created = gateway.create_payment_intent(12345, "USD", {"remittance_id": "rem_1", "platform_id": "plt_9"},
                                            "rem_1:12345")
    assert (created.status, created.currency, created.amount_minor, created.amount_received_minor) == (
        "requires_payment_method", "USD", 12345, 0)
    assert created.metadata == {"remittance_id": "rem_1", "platform_id": "plt_9"}
    assert created.client_secret is not None and created.client_secret.startswith(f"{created.id}_secret_")
    assert created.charge_id is None

    paid = stripe_reset.pay(created.id)
    intent = gateway.retrieve_payment_intent(created.id)

    assert (intent.id, intent.status, intent.amount_minor, intent.amount_received_minor) == (
        created.id, "succeeded", 12345, 12345)
    assert intent.metadata == {"remittance_id": "rem_1", "platform_id": "plt_9"}
    assert intent.charge_id == paid["latest_charge"]["id"]
    assert intent.charge is not None
    assert (intent.charge.id, intent.charge.payment_intent_id, intent.charge.status) == (
        intent.charge_id, created.id, "succeeded")
    assert (intent.charge.amount_captured_minor, intent.charge.amount_refunded_minor) == (12345, 0)


def test_zero_and_three_decimal_amounts_reach_stripe_exactly(gateway: StripeGateway,
                                                             stripe_reset: LocalStripe) -> None:
    """localstripe: JPY 1000 and KWD 12350 (12345 fils rounded up to the step) are what Stripe holds."""
    kwd = charge_amount(12345, "KWD")
    assert kwd == 12350
    jpy_intent = gateway.create_payment_intent(1000, "JPY", {}, "jpy-1000")
    kwd_intent = gateway.create_payment_intent(kwd, "KWD", {}, "kwd-12350")

    client = stripe_reset.client()
    jpy_raw = client.v1.payment_intents.retrieve(jpy_intent.id).to_dict()
    kwd_raw = client.v1.payment_intents.retrieve(kwd_intent.id).to_dict()
    assert (jpy_raw["amount"], jpy_raw["currency"]) == (1000, "jpy")
    assert (kwd_raw["amount"], kwd_raw["currency"]) == (12350, "kwd")
    assert (gateway.retrieve_payment_intent(kwd_intent.id).amount_minor, kwd_intent.currency) == (12350, "KWD")


def test_an_amount_stripe_would_refuse_is_refused_before_sending(gateway: StripeGateway,
                                                                 stripe_reset: LocalStripe) -> None:
    """localstripe: 12345 fils (last digit not 0) and 0 are refused; nothing reaches Stripe."""
    with pytest.raises(ValidationError):
        gateway.create_payment_intent(12345, "KWD", {}, "kwd-12345")
    with pytest.raises(ValidationError):
        gateway.create_payment_intent(0, "USD", {}, "usd-0")
    assert stripe_reset.client().v1.payment_intents.list().to_dict()["data"] == []


def test_partial_refund_shows_exactly_on_the_charge(gateway: StripeGateway, stripe_reset: LocalStripe) -> None:
    """localstripe: refunds of 2345 then 1000 of a 12345 charge read as 2345 then 3345 refunded."""
    intent = gateway.retrieve_payment_intent(paid_intent(gateway, stripe_reset, 12345))
    assert intent.charge_id is not None
    client = stripe_reset.client()

    refund = client.v1.refunds.create(params={"charge": intent.charge_id, "amount": 2345})
    charge = gateway.retrieve_charge(intent.charge_id)
    assert (charge.amount_minor, charge.amount_captured_minor, charge.amount_refunded_minor) == (12345, 12345, 2345)
    assert charge.balance_transaction is not None
    assert (charge.balance_transaction.id, charge.balance_transaction.amount_minor,
            charge.balance_transaction.fee_minor, charge.balance_transaction.net_minor) == (
        charge.balance_transaction_id, 12345, 0, 12345)

    read = gateway.retrieve_refund(refund.id)
    assert (read.id, read.charge_id, read.status, read.currency, read.amount_minor) == (
        refund.id, intent.charge_id, "succeeded", "USD", 2345)

    client.v1.refunds.create(params={"charge": intent.charge_id, "amount": 1000})
    assert gateway.retrieve_charge(intent.charge_id).amount_refunded_minor == 3345


def test_balance_transactions_page_by_page_see_each_once(gateway: StripeGateway,
                                                         stripe_reset: LocalStripe) -> None:
    """localstripe: three charges and a refund, read one per page with starting_after: four, each once."""
    for amount in (1000, 2000):
        paid_intent(gateway, stripe_reset, amount)
    refunded = gateway.retrieve_payment_intent(paid_intent(gateway, stripe_reset, 3000))
    assert refunded.charge_id is not None
    stripe_reset.client().v1.refunds.create(params={"charge": refunded.charge_id, "amount": 500})

    seen, after = [], None
    while True:
        page = gateway.list_balance_transactions(limit=1, starting_after=after)
        assert len(page.data) == 1
        seen.extend(page.data)
        after = page.data[-1].id
        if not page.has_more:
            break
    assert len(seen) == 4
    assert len({t.id for t in seen}) == 4
    assert sorted((t.type, t.amount_minor, t.fee_minor, t.net_minor, t.currency) for t in seen) == [
        ("charge", 1000, 0, 1000, "USD"), ("charge", 2000, 0, 2000, "USD"), ("charge", 3000, 0, 3000, "USD"),
        ("refund", -500, 0, -500, "USD")]
    assert gateway.list_balance_transactions(limit=1, starting_after=after).data == []


def test_declined_card_leaves_the_intent_unpaid(gateway: StripeGateway, stripe_reset: LocalStripe) -> None:
    """localstripe: pm_card_chargeCustomerFail declines; the intent is not succeeded, nothing received."""
    created = gateway.create_payment_intent(5000, "USD", {"remittance_id": "rem_2"}, "rem_2:5000")
    stripe_reset.pay(created.id, decline=True)

    intent = gateway.retrieve_payment_intent(created.id)
    assert (intent.status, intent.amount_received_minor) == ("requires_payment_method", 0)
    assert intent.charge is not None and intent.charge_id is not None
    charge = gateway.retrieve_charge(intent.charge_id)
    assert (charge.status, charge.amount_captured_minor, charge.amount_refunded_minor) == ("failed", 0, 0)
    assert gateway.list_balance_transactions().data == []


def test_localstripe_state_is_private_and_reset_empties_it(stripe_reset: LocalStripe) -> None:
    """localstripe: served on 127.0.0.1 only, nothing written to /tmp/localstripe.pickle, reset empties it."""
    import os

    from localstripe import resources

    gateway = StripeGateway(LOCAL_API_KEY, stripe_reset.url)
    assert stripe_reset.url.startswith("http://127.0.0.1:")
    before = os.stat("/tmp/localstripe.pickle").st_mtime_ns if os.path.exists("/tmp/localstripe.pickle") else None
    intent = gateway.create_payment_intent(700, "USD", {}, "k-700")
    after = os.stat("/tmp/localstripe.pickle").st_mtime_ns if os.path.exists("/tmp/localstripe.pickle") else None
    assert after == before
    assert f"payment_intent:{intent.id}" in resources.store

    stripe_reset.reset()
    assert dict(resources.store) == {}
    with pytest.raises(PaymentsUnavailableError, match="HTTP 404"):
        gateway.retrieve_payment_intent(intent.id)


def test_unreachable_stripe_raises_payments_unavailable() -> None:
    """No server (a closed port): every call raises PaymentsUnavailableError, without the key in it."""
    gateway = StripeGateway("sk_test_do_not_show_me", closed_port_url(), max_network_retries=1)
    with pytest.raises(PaymentsUnavailableError) as caught:
        gateway.create_payment_intent(1000, "USD", {}, "k")
    assert caught.value.message == (
        "Stripe could not create a PaymentIntent of 1000 USD: APIConnectionError: no answer (ConnectionError)")
    with pytest.raises(PaymentsUnavailableError) as caught:
        gateway.list_balance_transactions()
    assert "sk_test" not in caught.value.message
    assert caught.value.message.startswith("Stripe could not list balance transactions: APIConnectionError")


def test_gateway_from_settings() -> None:
    """No server: a gateway only when an API key is configured, on the configured base."""
    assert gateway_from_settings(Settings()) is None
    gateway = gateway_from_settings(Settings(stripe_api_key="sk_test_x", stripe_api_base="http://127.0.0.1:9/"))
    assert isinstance(gateway, StripeGateway)
    assert gateway.api_base == "http://127.0.0.1:9/"
    assert "sk_test_x" not in repr(gateway)


# --------------------------------------------------------------------------- webhooks


def test_verify_webhook_accepts_a_signed_event() -> None:
    """No server: an event signed as Stripe signs comes back as the same plain dict."""
    event = stripe_event("charge.refunded", {"id": "ch_1", "object": "charge"}, event_id="evt_1", created=1700000000)
    body, header = signed_event(event, SECRET)
    assert verify_webhook(body, header, SECRET) == event
    now = int(time.time())
    assert stripe_signature(body, SECRET, now) == stripe.WebhookSignature.generate_signature_header(
        body.decode(), SECRET, now)


@pytest.mark.parametrize("case", ["wrong secret", "changed payload", "301 s old", "missing header",
                                  "empty header", "garbled header", "array body", "string body", "not json"])
def test_verify_webhook_refuses(case: str) -> None:
    """No server: a wrong secret, changed body, stale timestamp, absent/garbled header or a
    body that is not a JSON object raise SignatureError."""
    body = json.dumps(stripe_event("payment_intent.succeeded", {"id": "pi_1"})).encode()
    header: str | None = stripe_signature(body, SECRET)
    if case == "wrong secret":
        header = stripe_signature(body, "whsec_other")
    elif case == "changed payload":
        body = body.replace(b"pi_1", b"pi_2")
    elif case == "301 s old":
        header = stripe_signature(body, SECRET, int(time.time()) - 301)
    elif case == "missing header":
        header = None
    elif case == "empty header":
        header = ""
    elif case == "garbled header":
        header = "v1=abc"
    else:
        body = {"array body": b"[1, 2]", "string body": b'"event"', "not json": b"event"}[case]
        header = stripe_signature(body, SECRET)
    with pytest.raises(SignatureError):
        verify_webhook(body, header, SECRET)


def test_verify_webhook_accepts_299_s_old() -> None:
    """No server: a timestamp inside the 300 s tolerance passes."""
    body = b'{"id": "evt_1", "object": "event"}'
    assert verify_webhook(body, stripe_signature(body, SECRET, int(time.time()) - 299), SECRET) == {
        "id": "evt_1", "object": "event"}


class Receiver:
    """A tiny HTTP server on 127.0.0.1 that keeps every POST's body and headers."""

    def __init__(self) -> None:
        self.received: list[tuple[bytes, dict[str, str]]] = []
        self._server = make_server("127.0.0.1", 0, self._app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}/webhooks/stripe"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()

    def _app(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        self.received.append((request.get_data(), dict(request.headers)))
        return Response("", status=200)(environ, start_response)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.stop()


def test_a_webhook_sent_by_localstripe_passes_verification(gateway: StripeGateway, stripe_reset: LocalStripe,
                                                           receiver: Receiver) -> None:
    """localstripe: its payment_intent.succeeded webhook, delivered to a local receiver, verifies."""
    stripe_reset.register_webhook(receiver.url, SECRET, events=["payment_intent.succeeded"])
    intent_id = paid_intent(gateway, stripe_reset, 12345)

    def delivered() -> tuple[bytes, dict[str, str]] | None:
        return next((r for r in list(receiver.received) if intent_id.encode() in r[0]), None)

    body, headers = wait_for(delivered, timeout=10, message="localstripe's payment_intent.succeeded")
    event = verify_webhook(body, headers.get("Stripe-Signature"), SECRET)
    assert (event["object"], event["type"]) == ("event", "payment_intent.succeeded")
    assert event["id"].startswith("evt_")
    assert (event["data"]["object"]["id"], event["data"]["object"]["amount"]) == (intent_id, 12345)
    with pytest.raises(SignatureError):
        verify_webhook(body, headers.get("Stripe-Signature"), "whsec_other")


# --------------------------------------------------------------------------- recorded responses


def test_balance_transactions_of_a_payout(recorded_stripe: RecordedStripe) -> None:
    """RecordedStripe (localstripe cannot filter by payout nor charge fees): payout=po_1 is sent
    and its four transactions are read with their fees."""
    txns = [
        balance_txn_obj("txn_po", "payout", -6957, 0, "usd", "po_1", created=1752600000),
        balance_txn_obj("txn_du", "adjustment", -1500, 1500, "usd", "du_1", created=1752590000),
        balance_txn_obj("txn_re", "refund", -2000, 0, "usd", "re_1", created=1752580000),
        balance_txn_obj("txn_ch", "charge", 12345, 388, "usd", "ch_1", created=1752570000),
    ]
    recorded_stripe.add("GET", "/v1/balance_transactions", list_obj(txns, "/v1/balance_transactions"),
                        query={"limit": 100, "payout": "po_1"})
    gateway = StripeGateway("sk_test_recorded", recorded_stripe.url)

    page = gateway.list_balance_transactions(payout="po_1")

    assert recorded_stripe.requests == [("GET", "/v1/balance_transactions", {"limit": "100", "payout": "po_1"})]
    assert page.has_more is False
    assert [(t.id, t.type, t.amount_minor, t.fee_minor, t.net_minor, t.source_id, t.reporting_category)
            for t in page.data] == [
        ("txn_po", "payout", -6957, 0, -6957, "po_1", "payout"),
        ("txn_du", "adjustment", -1500, 1500, -3000, "du_1", "dispute"),
        ("txn_re", "refund", -2000, 0, -2000, "re_1", "refund"),
        ("txn_ch", "charge", 12345, 388, 11957, "ch_1", "charge"),
    ]
    assert sum(t.net_minor for t in page.data) == 0
    assert {t.currency for t in page.data} == {"USD"}
    assert page.data[3].created is not None and int(page.data[3].created.timestamp()) == 1752570000


def test_list_sends_only_the_parameters_given(recorded_stripe: RecordedStripe) -> None:
    """RecordedStripe: limit always, starting_after only when given, never payout=None."""
    recorded_stripe.add("GET", "/v1/balance_transactions", list_obj([], "/v1/balance_transactions"))
    gateway = StripeGateway("sk_test_recorded", recorded_stripe.url)
    gateway.list_balance_transactions()
    gateway.list_balance_transactions(limit=2, starting_after="txn_9")
    assert recorded_stripe.requests == [
        ("GET", "/v1/balance_transactions", {"limit": "100"}),
        ("GET", "/v1/balance_transactions", {"limit": "2", "starting_after": "txn_9"}),
    ]
    with pytest.raises(ValidationError):
        gateway.list_balance_transactions(limit=101)


def test_create_sends_lower_case_currency_metadata_and_the_idempotency_key(
        recorded_stripe: RecordedStripe) -> None:
    """RecordedStripe (localstripe ignores idempotency keys): the request exactly as Stripe receives it;
    no payment method types unless the gateway was given some (then ``allowed_payment_method_types``)."""
    recorded_stripe.add("POST", "/v1/payment_intents",
                        payment_intent_obj("pi_1", 12350, "kwd", "requires_payment_method", {"remittance_id": "rem_1"}))
    gateway = StripeGateway("sk_test_recorded", recorded_stripe.url)
    card_only = StripeGateway("sk_test_recorded", recorded_stripe.url, allowed_payment_method_types=["card"])

    intent = gateway.create_payment_intent(12350, "KWD", {"remittance_id": "rem_1"}, "rem_1:12350")
    card_only.create_payment_intent(12350, "KWD", {"remittance_id": "rem_1"}, "rem_1:12350:card")

    assert (intent.id, intent.currency, intent.amount_minor, intent.metadata) == (
        "pi_1", "KWD", 12350, {"remittance_id": "rem_1"})
    first, second = recorded_stripe.received
    assert (first.method, first.path, first.query) == ("POST", "/v1/payment_intents", {})
    assert first.form == {"amount": "12350", "currency": "kwd", "metadata[remittance_id]": "rem_1"}
    assert first.headers["Idempotency-Key"] == "rem_1:12350"
    assert first.headers["Authorization"] == "Bearer sk_test_recorded"
    assert second.form == {"amount": "12350", "currency": "kwd", "metadata[remittance_id]": "rem_1",
                           "allowed_payment_method_types[0]": "card"}
    assert second.headers["Idempotency-Key"] == "rem_1:12350:card"
    assert first.headers["Stripe-Version"] == stripe.api_version


def test_retrieve_payout_and_dispute(recorded_stripe: RecordedStripe) -> None:
    """RecordedStripe (localstripe has USD payouts only in EUR, and no disputes): both are read exactly."""
    recorded_stripe.add("GET", "/v1/payouts/po_1",
                        payout_obj("po_1", 6957, "usd", "paid", balance_transaction="txn_po"))
    withdrawal = balance_txn_obj("txn_du", "adjustment", -1500, 1500, "usd", "du_1", created=1752590000)
    recorded_stripe.add("GET", "/v1/disputes/du_1",
                        dispute_obj("du_1", "ch_1", "pi_1", 1500, "usd", "needs_response", [withdrawal]))
    gateway = StripeGateway("sk_test_recorded", recorded_stripe.url)

    payout = gateway.retrieve_payout("po_1")
    assert (payout.id, payout.status, payout.currency, payout.amount_minor, payout.balance_transaction_id) == (
        "po_1", "paid", "USD", 6957, "txn_po")
    assert payout.arrival_date is not None

    dispute = gateway.retrieve_dispute("du_1")
    assert (dispute.id, dispute.charge_id, dispute.payment_intent_id, dispute.status, dispute.currency) == (
        "du_1", "ch_1", "pi_1", "needs_response", "USD")
    assert (dispute.amount_minor, dispute.withdrawn_minor, dispute.reinstated_minor, dispute.fee_minor,
            dispute.fee_returned_minor) == (1500, 1500, 0, 1500, 0)
    assert recorded_stripe.requests == [("GET", "/v1/payouts/po_1", {}), ("GET", "/v1/disputes/du_1", {})]


def test_a_stripe_error_answer_raises_payments_unavailable(recorded_stripe: RecordedStripe) -> None:
    """RecordedStripe: a 404 (nothing recorded) and a 401 become PaymentsUnavailableError naming them."""
    gateway = StripeGateway("sk_test_recorded", recorded_stripe.url, max_network_retries=0)
    with pytest.raises(PaymentsUnavailableError) as caught:
        gateway.retrieve_payout("po_missing")
    assert caught.value.message == (
        "Stripe could not retrieve payout po_missing: InvalidRequestError, HTTP 404: "
        "Unrecognized request URL (GET: /v1/payouts/po_missing).")
    recorded_stripe.add("GET", "/v1/disputes/du_1", {"error": {
        "type": "invalid_request_error", "message": "Invalid API Key provided: sk_test_********rded"}}, status=401)
    with pytest.raises(PaymentsUnavailableError) as caught:
        gateway.retrieve_dispute("du_1")
    assert caught.value.message == (
        "Stripe could not retrieve dispute du_1: AuthenticationError, HTTP 401: Invalid API Key provided: [redacted]")
