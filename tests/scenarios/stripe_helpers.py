"""Builders and checks for the Stripe scenarios: paying on localstripe, delivering signed
webhooks through the API, and reading the few ledger numbers the API does not show.

Webhooks are delivered the way Stripe delivers them: the event's JSON body, signed with the
endpoint's secret (``Stripe-Signature``), POSTed to ``/v1/webhooks/stripe`` with no API key.
Events are built from what localstripe returns for the real objects whenever it has them
(``intent_event``), else from the ``tests.stripe_support`` builders.
"""

from __future__ import annotations

import copy
import time
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import func, select

from ledger.db import Database
from ledger.tables import Account, LedgerTransaction, Remittance, StripeEvent, StripePayout
from tests.conftest import Caller
from tests.scenarios.helpers import get
from tests.stripe_support import LocalStripe, RecordedStripe, signed_event, stripe_event

WEBHOOK_SECRET = "whsec_test"
WEBHOOK_PATH = "/v1/webhooks/stripe"


# --------------------------------------------------------------------------- webhooks


def deliver(client: FlaskClient, event: dict[str, Any], secret: str = WEBHOOK_SECRET,
            timestamp: int | None = None) -> Any:
    """POST ``event`` signed with ``secret`` (at ``timestamp``, default now); returns the response."""
    body, signature = signed_event(event, secret, timestamp)
    return client.post(WEBHOOK_PATH, data=body,
                       headers={"Stripe-Signature": signature, "Content-Type": "application/json"})


def delivered(client: FlaskClient, event: dict[str, Any]) -> dict[str, Any]:
    """Deliver ``event``; asserts 200 and returns the answer ``{received, event_id, duplicate, outcome}``."""
    response = deliver(client, event)
    assert response.status_code == 200, response.json
    result: dict[str, Any] = response.json
    return result


def intent_event(localstripe: LocalStripe, payment_intent_id: str,
                 event_type: str = "payment_intent.succeeded") -> dict[str, Any]:
    """An event carrying the PaymentIntent exactly as localstripe has it now."""
    intent = localstripe.client().v1.payment_intents.retrieve(payment_intent_id).to_dict(recursive=True)
    return stripe_event(event_type, intent)


def charge_event(localstripe: LocalStripe, charge_id: str, event_type: str = "charge.refunded") -> dict[str, Any]:
    """An event carrying the charge exactly as localstripe has it now (localstripe sends no ``charge.*``)."""
    charge = localstripe.client().v1.charges.retrieve(charge_id).to_dict(recursive=True)
    return stripe_event(event_type, charge)


def event_count(database: Database) -> int:
    """Rows in ``stripe_events``: every webhook the ledger accepted."""
    return int(database.read(lambda s: s.scalar(select(func.count()).select_from(StripeEvent))) or 0)


# --------------------------------------------------------------------------- paying


def remit_in(caller: Caller, external_id: str, currency: str, lines: list[dict[str, Any]]) -> dict[str, Any]:
    """POST a remittance batch in ``currency``; asserts 201, returns the remittance."""
    response = caller.post("/v1/remittances", {"external_id": external_id, "currency": currency, "lines": lines})
    assert response.status_code == 201, response.json
    result: dict[str, Any] = response.json
    return result



def payment_intent(caller: Caller, remittance_id: str, status: int = 201) -> dict[str, Any]:
    """``POST /v1/remittances/{id}/payment-intents``; asserts the status, returns the answer."""
    response = caller.post(f"/v1/remittances/{remittance_id}/payment-intents")
    assert response.status_code == status, response.json
    result: dict[str, Any] = response.json
    return result


def own_intent(localstripe: LocalStripe, amount_minor: int, currency: str, remittance_id: str) -> str:
    """A PaymentIntent the payer creates on Stripe itself (not through our API), naming the
    remittance in its metadata, as a contributor paying part of what it owes would; returns its id."""
    intent = localstripe.client().v1.payment_intents.create(params={
        "amount": amount_minor, "currency": currency.lower(), "metadata": {"remittance_id": remittance_id}})
    return intent.id


def paid(localstripe: LocalStripe, payment_intent_id: str) -> dict[str, Any]:
    """Pay the intent on localstripe by card; asserts it succeeded, returns the intent then."""
    intent = localstripe.pay(payment_intent_id)
    assert intent["status"] == "succeeded", intent
    return intent


def at_status(intent: dict[str, Any], status: str) -> dict[str, Any]:
    """A copy of a PaymentIntent as it was at an earlier ``status`` (nothing received, no charge)."""
    earlier = copy.deepcopy(intent)
    earlier.update(status=status, latest_charge=None)
    earlier.pop("amount_received", None)
    if isinstance(earlier.get("charges"), dict):
        earlier["charges"] = {**earlier["charges"], "data": [], "total_count": 0}
    return earlier


# --------------------------------------------------------------------------- RecordedStripe


def refund_obj(id: str, charge: str, payment_intent: str, amount: int, currency: str,
               balance_transaction: str) -> dict[str, Any]:
    """A ``refund`` of (part of) a charge, succeeded."""
    return {"id": id, "object": "refund", "amount": amount, "balance_transaction": balance_transaction,
            "charge": charge, "created": int(time.time()), "currency": currency.lower(), "metadata": {},
            "payment_intent": payment_intent, "reason": "requested_by_customer", "receipt_number": None,
            "source_transfer_reversal": None, "status": "succeeded", "transfer_reversal": None}


def serve(recorded: RecordedStripe, path: str, body: Any, query: dict[str, Any] | None = None) -> None:
    """Answer ``GET path`` (with exactly ``query``, when given) with ``body`` from now on,
    replacing any earlier recording for the same request (Stripe's state moved on)."""
    wanted = None if query is None else {str(k): str(v) for k, v in query.items()}
    recorded.recordings[:] = [r for r in recorded.recordings
                              if not (r.method == "GET" and r.path == path and r.query == wanted)]
    recorded.add("GET", path, body, query)


# --------------------------------------------------------------------------- ledger reads


def balance(database: Database, name: str, currency: str = "USD") -> int:
    """An account's balance in its normal direction (0 when it has never moved)."""
    value = database.read(lambda s: s.scalar(select(Account.balance_minor).where(
        Account.name == name, Account.currency == currency)))
    return int(value or 0)


def balances(database: Database, currency: str = "USD") -> dict[str, int]:
    """Every account's balance in ``currency``, by name."""
    rows = database.read(lambda s: s.execute(select(Account.name, Account.balance_minor).where(
        Account.currency == currency)).all())
    return {name: int(value) for name, value in rows}


def reopened_minor(database: Database, remittance_id: str) -> int:
    """What refunds and lost disputes reopened on a remittance (the API does not show it)."""
    value = database.read(lambda s: s.scalar(select(Remittance.reopened_minor).where(
        Remittance.id == remittance_id)))
    return int(value or 0)


def payout_row(database: Database, payout_id: str) -> StripePayout:
    """The ledger's record of a Stripe payout and its reconciliation."""
    row = database.read(lambda s: s.scalar(select(StripePayout).where(StripePayout.id == payout_id)))
    assert row is not None, f"payout {payout_id} not in the ledger"
    return row


def transaction_kinds(database: Database, remittance_id: str) -> list[str]:
    """The kinds of the ledger transactions posted for a remittance, sorted."""
    rows = database.read(lambda s: s.scalars(select(LedgerTransaction.kind).where(
        LedgerTransaction.remittance_id == remittance_id)).all())
    return sorted(rows)


def trial_balance(admin: Caller, currency: str = "USD") -> tuple[int, int]:
    """``GET /v1/ledger/trial-balance``: (debits, credits) in ``currency``; asserts they agree."""
    rows = {r["currency"]: r for r in get(admin, "/v1/ledger/trial-balance")["currencies"]}
    row = rows.get(currency, {"debits_minor": 0, "credits_minor": 0, "difference_minor": 0})
    assert row["difference_minor"] == 0, row
    return row["debits_minor"], row["credits_minor"]


def activity(report: dict[str, Any], currency: str = "USD") -> dict[str, tuple[int | None, int]]:
    """A report's activity in ``currency``: kind -> (count, amount_minor)."""
    return {a["kind"]: (a["count"], a["amount_minor"]) for a in report["activity"] if a["currency"] == currency}


def reconcile(admin: Caller) -> dict[str, Any]:
    """``POST /v1/reconciliations``; asserts 201 and returns the report."""
    response = admin.post("/v1/reconciliations")
    assert response.status_code == 201, response.json
    result: dict[str, Any] = response.json
    return result
