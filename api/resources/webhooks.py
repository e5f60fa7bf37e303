"""Stripe's webhook: the signature is its credential (API.md, DESIGN.md "Stripe")."""

from __future__ import annotations

from typing import Any

from flask import request
from marshmallow import Schema, fields

from api.blueprint import Blueprint
from api.context import db, now, state
from ledger.errors import UnavailableError
from ledger.services.stripe_settlement import apply_event
from ledger.stripe_gateway import verify_webhook

blp = Blueprint("webhooks", __name__, url_prefix="/v1", description="Stripe webhooks")


class WebhookOut(Schema):
    """What happened to the event: ``duplicate`` when it was seen before (nothing posted)."""

    received = fields.Boolean()
    event_id = fields.String()
    duplicate = fields.Boolean()
    outcome = fields.String()


@blp.route("/webhooks/stripe", methods=["POST"])
@blp.response(200, WebhookOut)
@blp.doc(security=[])
def stripe_webhook() -> Any:
    """A Stripe event, checked against ``Stripe-Signature`` (bad or stale: 400, nothing stored),
    stored once by id and applied in the same transaction."""
    secret = state().settings.stripe_webhook_secret
    if not secret:
        raise UnavailableError("Stripe webhooks are not configured (set PBL_STRIPE_WEBHOOK_SECRET)")
    event = verify_webhook(request.get_data(cache=True), request.headers.get("Stripe-Signature"), secret)
    at = now()
    outcome, duplicate = db().transaction(lambda s: apply_event(s, event, at))
    return {"received": True, "event_id": event["id"], "duplicate": duplicate, "outcome": outcome}
