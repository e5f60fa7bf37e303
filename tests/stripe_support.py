"""Stripe test helpers: a private localstripe, signed events, Stripe-shaped objects, a recorded stub.

- ``LocalStripe``: the ``localstripe`` package (a stateful Stripe look-alike, an aiohttp app)
  served from a background thread on 127.0.0.1 and a free port, with nothing persisted.
- ``stripe_signature`` / ``stripe_event``: webhook bodies and ``Stripe-Signature`` headers
  exactly as Stripe makes them, for what localstripe never sends (``charge.*``, disputes).
- ``*_obj`` builders: Stripe API objects shaped as Stripe's API reference documents them.
- ``RecordedStripe``: a tiny HTTP server answering recorded Stripe responses, for what
  localstripe lacks (fees, filtering balance transactions by payout, disputes, USD payouts).

STACK.md "Stripe and localstripe" lists what localstripe does and lacks.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar
from urllib.parse import parse_qsl

import stripe
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

T = TypeVar("T")

LOCAL_API_KEY = "sk_test_local"
#: The API version our events claim (the one stripe-python pins).
API_VERSION: str = stripe.api_version


def wait_for(predicate: Callable[[], T | None], timeout: float = 10.0, interval: float = 0.05,
             message: str = "condition") -> T:
    """Poll ``predicate`` until it returns something truthy and return that.

    Raises AssertionError naming ``message`` after ``timeout`` seconds. For localstripe's
    webhooks, which it sends about 1 s after the change, from its own event loop.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {message}")
        time.sleep(interval)


def _loopback_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    sock.setblocking(False)
    return sock


def closed_port_url() -> str:
    """An http://127.0.0.1 address where nothing listens (a port just released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# --------------------------------------------------------------------------- localstripe


def _fresh_app(web: Any, server: Any) -> Any:
    """A new aiohttp Application with localstripe's routes and middlewares.

    ``localstripe.server.app`` binds itself to the first event loop that runs it, so a
    second LocalStripe in the same process (after ``stop()``) needs its own copy.
    """
    app = web.Application(middlewares=list(server.app.middlewares))
    app.on_response_prepare.append(server.add_cors_headers)
    for route in server.app.router.routes():
        app.router.add_route(route.method, route.resource.canonical, route.handler)
    return app


class LocalStripe:
    """localstripe (PyPI) on 127.0.0.1 and a free port, in a thread with its own event loop.

    State isolation: localstripe keeps every object in one module-level ``Store`` (a dict)
    in *this* process; it loads ``/tmp/localstripe.pickle`` only from its command-line
    ``start()`` (never called here) and writes that file after every change. While a
    LocalStripe runs, the store's ``dump_to_disk``/``try_load_from_disk`` are replaced
    by no-ops, so nothing is read from or written to the shared file: two test sessions
    (two processes, e.g. SQLite and PostgreSQL runs) each have their own store and port.
    Because the store is per process, only one LocalStripe may run at a time in a
    process (a second raises RuntimeError). ``reset()`` empties the store
    (``DELETE /_config/data``), forgets registered webhooks and cancels deliveries still
    waiting, so no test sees another's objects or events.

    ``url``: ``http://127.0.0.1:PORT``. Use as a context manager or call ``stop()``.
    """

    _running: ClassVar[LocalStripe | None] = None
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, startup_timeout: float = 10.0) -> None:
        from aiohttp import web

        with warnings.catch_warnings():
            # localstripe's sync handlers: aiohttp's "Bare functions are deprecated"
            warnings.simplefilter("ignore", DeprecationWarning)
            from localstripe import resources, server, webhooks

        with LocalStripe._lock:
            if LocalStripe._running is not None:
                raise RuntimeError("a LocalStripe is already running in this process (its store is per process)")
            LocalStripe._running = self
        self._resources, self._webhooks = resources, webhooks
        store = resources.store
        # Nothing persisted, nothing loaded: instance attributes shadow Store's methods.
        store.dump_to_disk = lambda: None
        store.try_load_from_disk = lambda: None
        store.clear()
        webhooks._webhooks = {}

        self._sock = _loopback_socket()
        self.port: int = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._loop = asyncio.new_event_loop()
        self._runner = web.AppRunner(_fresh_app(web, server), access_log=None)
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._serve, args=(web,), name=f"localstripe:{self.port}",
                                        daemon=True)
        self._thread.start()
        if not self._started.wait(startup_timeout) or self._error is not None:
            self.stop()
            raise RuntimeError(f"localstripe did not start: {self._error!r}")

    def _serve(self, web: Any) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._runner.setup())
            self._loop.run_until_complete(web.SockSite(self._runner, self._sock).start())
        except BaseException as exc:  # reported to the constructor
            self._error = exc
            self._started.set()
            return
        self._started.set()
        self._loop.run_forever()

    def _in_loop(self, make: Callable[[], Any], timeout: float = 10.0) -> Any:
        """Run ``make()`` (a coroutine factory) on localstripe's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(make(), self._loop).result(timeout)

    def _pending_deliveries(self) -> list[asyncio.Task[Any]]:
        code = self._webhooks._send_webhook.__code__
        return [t for t in asyncio.all_tasks(self._loop)
                if getattr(t.get_coro(), "cr_code", None) is code and not t.done()]

    def stop(self) -> None:
        """Stop serving, cancel pending webhook deliveries, empty the store, restore localstripe."""
        if self._thread.is_alive() and self._loop.is_running():
            async def shutdown() -> None:
                for task in self._pending_deliveries():
                    task.cancel()
                await self._runner.cleanup()

            try:
                self._in_loop(shutdown)
            finally:
                self._loop.call_soon_threadsafe(self._loop.stop)
                self._thread.join(timeout=10)
        if not self._loop.is_running():
            self._loop.close()
        self._sock.close()
        store = self._resources.store
        store.clear()
        self._webhooks._webhooks = {}
        for name in ("dump_to_disk", "try_load_from_disk"):
            store.__dict__.pop(name, None)
        with LocalStripe._lock:
            if LocalStripe._running is self:
                LocalStripe._running = None

    def __enter__(self) -> LocalStripe:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset(self) -> None:
        """Forget every object (``DELETE /_config/data``), every registered webhook, and
        every webhook delivery still waiting to be sent."""
        async def cancel_deliveries() -> None:
            for task in self._pending_deliveries():
                task.cancel()
            self._webhooks._webhooks = {}

        import requests

        self._in_loop(cancel_deliveries)
        response = requests.delete(f"{self.url}/_config/data", timeout=10)
        assert response.status_code == 200, response.text

    def register_webhook(self, url: str, secret: str, events: Iterable[str] | None = None,
                         webhook_id: str | None = None) -> str:
        """Have localstripe POST its events to ``url``, signed with ``secret``
        (``POST /_config/webhooks/{id}``; only ``events`` when given). Returns the id."""
        import requests

        webhook_id = webhook_id or f"wh_{uuid.uuid4().hex[:12]}"
        body: dict[str, Any] = {"url": url, "secret": secret}
        if events is not None:
            body["events"] = list(events)
        response = requests.post(f"{self.url}/_config/webhooks/{webhook_id}", json=body, timeout=10)
        assert response.status_code == 200, response.text
        return webhook_id

    def client(self, max_network_retries: int = 0) -> stripe.StripeClient:
        """A ``stripe.StripeClient`` for this server (key ``sk_test_local``)."""
        return stripe.StripeClient(LOCAL_API_KEY, base_addresses={"api": self.url},
                                   max_network_retries=max_network_retries)

    def pay(self, payment_intent_id: str, decline: bool = False) -> dict[str, Any]:
        """Pay an existing PaymentIntent as a payer would; returns the intent afterwards.

        localstripe answers 500 to ``confirm(payment_method=...)``, so the intent's
        ``payment_method`` is set first (Stripe's test ids: ``pm_card_visa``, or
        ``pm_card_chargeCustomerFail`` when ``decline``), then it is confirmed. A decline
        is Stripe's 402 ``card_declined``; the intent is then back to
        ``requires_payment_method``.
        """
        client = self.client()
        method = "pm_card_chargeCustomerFail" if decline else "pm_card_visa"
        client.v1.payment_intents.update(payment_intent_id, params={"payment_method": method})
        try:
            client.v1.payment_intents.confirm(payment_intent_id)
        except stripe.CardError:
            if not decline:
                raise
        else:
            assert not decline, "localstripe accepted a card that should be declined"
        return client.v1.payment_intents.retrieve(payment_intent_id).to_dict()


# --------------------------------------------------------------------------- signed events


def stripe_signature(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """The ``Stripe-Signature`` header Stripe would send for ``payload``:
    ``t=<ts>,v1=<hex HMAC-SHA256(secret, "<ts>.<payload>")>`` (``ts`` now by default)."""
    ts = int(time.time()) if timestamp is None else timestamp
    signed = f"{ts}.".encode() + payload
    digest = hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()
    return f"t={ts},v1={digest}"


def stripe_id(prefix: str) -> str:
    """A Stripe-looking id: ``prefix`` + ``_`` + 24 characters."""
    return f"{prefix}_{uuid.uuid4().hex[:24]}"


def stripe_event(event_type: str, obj: dict[str, Any], event_id: str | None = None,
                 created: int | None = None) -> dict[str, Any]:
    """A Stripe event envelope (snapshot event) carrying ``obj`` as ``data.object``."""
    return {
        "id": event_id or stripe_id("evt"),
        "object": "event",
        "api_version": API_VERSION,
        "created": int(time.time()) if created is None else created,
        "data": {"object": obj},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
    }


def signed_event(event: Mapping[str, Any], secret: str, timestamp: int | None = None) -> tuple[bytes, str]:
    """``(body, Stripe-Signature header)`` for ``event``, ready to POST to a webhook route."""
    body = json.dumps(event, indent=2).encode("utf-8")
    return body, stripe_signature(body, secret, timestamp)


# --------------------------------------------------------------------------- object builders


def _now() -> int:
    return int(time.time())


def balance_txn_obj(id: str, type: str, amount: int, fee: int, currency: str, source: str | None,
                    created: int | None = None, reporting_category: str | None = None) -> dict[str, Any]:
    """A ``balance_transaction``: ``net = amount - fee``; one ``stripe_fee`` line when fee != 0."""
    created = _now() if created is None else created
    category = reporting_category or {"charge": "charge", "payment": "charge", "refund": "refund",
                                      "adjustment": "dispute", "payout": "payout"}.get(type, type)
    fee_details = [] if fee == 0 else [
        {"amount": fee, "application": None, "currency": currency.lower(), "description": "Stripe processing fees",
         "type": "stripe_fee"}]
    return {
        "id": id, "object": "balance_transaction", "amount": amount, "available_on": created + 2 * 86400,
        "balance_type": "payments", "created": created, "currency": currency.lower(), "description": None,
        "exchange_rate": None, "fee": fee, "fee_details": fee_details, "net": amount - fee,
        "reporting_category": category, "source": source, "status": "available", "type": type,
    }


def charge_obj(id: str, payment_intent: str | None, amount: int, currency: str, amount_refunded: int = 0,
               balance_transaction: str | dict[str, Any] | None = None, status: str = "succeeded") -> dict[str, Any]:
    """A ``charge`` of a PaymentIntent (card payment)."""
    paid = status == "succeeded"
    return {
        "id": id, "object": "charge", "amount": amount, "amount_captured": amount if paid else 0,
        "amount_refunded": amount_refunded, "application": None, "application_fee": None,
        "application_fee_amount": None, "balance_transaction": balance_transaction,
        "billing_details": {"address": {"city": None, "country": None, "line1": None, "line2": None,
                                        "postal_code": None, "state": None},
                            "email": None, "name": None, "phone": None},
        "calculated_statement_descriptor": "PBL FUND", "captured": paid, "created": _now(),
        "currency": currency.lower(), "customer": None, "description": None, "disputed": False,
        "failure_balance_transaction": None,
        "failure_code": None if paid or status == "pending" else "card_declined",
        "failure_message": None if paid or status == "pending" else "Your card was declined.",
        "fraud_details": {}, "livemode": False, "metadata": {}, "on_behalf_of": None,
        "outcome": {"network_status": "approved_by_network" if paid else "declined_by_network",
                    "reason": None if paid else "generic_decline", "risk_level": "normal", "risk_score": 32,
                    "seller_message": "Payment complete." if paid else "The bank did not return any further details.",
                    "type": "authorized" if paid else "issuer_declined"},
        "paid": paid, "payment_intent": payment_intent, "payment_method": "pm_1PbLfund0000000000000000",
        "payment_method_details": {"card": {"brand": "visa", "country": "US", "exp_month": 12, "exp_year": 2030,
                                            "funding": "credit", "last4": "4242", "network": "visa"},
                                   "type": "card"},
        "receipt_email": None, "receipt_number": None, "receipt_url": None,
        "refunded": amount_refunded >= amount > 0, "review": None, "shipping": None, "source": None,
        "source_transfer": None, "statement_descriptor": None, "statement_descriptor_suffix": None,
        "status": status, "transfer_data": None, "transfer_group": None,
    }


def payment_intent_obj(id: str, amount: int, currency: str, status: str, metadata: Mapping[str, str],
                       amount_received: int | None = None,
                       latest_charge: str | dict[str, Any] | None = None) -> dict[str, Any]:
    """A ``payment_intent`` (card only). ``amount_received`` defaults to ``amount`` when
    ``status`` is ``succeeded``, else 0."""
    if amount_received is None:
        amount_received = amount if status == "succeeded" else 0
    return {
        "id": id, "object": "payment_intent", "amount": amount,
        "amount_capturable": amount if status == "requires_capture" else 0,
        "amount_details": {"tip": {}}, "amount_received": amount_received, "application": None,
        "application_fee_amount": None, "automatic_payment_methods": None, "canceled_at": None,
        "cancellation_reason": None, "capture_method": "automatic",
        "client_secret": f"{id}_secret_{uuid.uuid4().hex[:24]}", "confirmation_method": "automatic",
        "created": _now(), "currency": currency.lower(), "customer": None, "description": None,
        "last_payment_error": None, "latest_charge": latest_charge, "livemode": False, "metadata": dict(metadata),
        "next_action": None, "on_behalf_of": None,
        "payment_method": "pm_1PbLfund0000000000000000" if latest_charge else None,
        "payment_method_options": {"card": {"installments": None, "mandate_options": None, "network": None,
                                            "request_three_d_secure": "automatic"}},
        "payment_method_types": ["card"], "processing": None, "receipt_email": None, "review": None,
        "setup_future_usage": None, "shipping": None, "source": None, "statement_descriptor": None,
        "statement_descriptor_suffix": None, "status": status, "transfer_data": None, "transfer_group": None,
    }


def dispute_obj(id: str, charge: str, payment_intent: str | None, amount: int, currency: str, status: str,
                balance_transactions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A ``dispute``; ``balance_transactions`` (full objects, as Stripe embeds them) show the
    money withdrawn (amount < 0, fee > 0) and reinstated (amount > 0)."""
    created = _now()
    return {
        "id": id, "object": "dispute", "amount": amount, "balance_transactions": list(balance_transactions or []),
        "charge": charge, "created": created, "currency": currency.lower(),
        "evidence": {"customer_name": None, "product_description": None, "uncategorized_text": None},
        "evidence_details": {"due_by": created + 7 * 86400, "has_evidence": False, "past_due": False,
                             "submission_count": 0},
        "is_charge_refundable": False, "livemode": False, "metadata": {}, "payment_intent": payment_intent,
        "reason": "fraudulent", "status": status,
    }


def payout_obj(id: str, amount: int, currency: str, status: str,
               balance_transaction: str | None = None) -> dict[str, Any]:
    """A ``payout`` to the fund's bank account (automatic, standard)."""
    created = _now()
    return {
        "id": id, "object": "payout", "amount": amount, "application_fee": None, "application_fee_amount": None,
        "arrival_date": created + 2 * 86400, "automatic": True,
        "balance_transaction": balance_transaction or stripe_id("txn"), "created": created,
        "currency": currency.lower(), "description": "STRIPE PAYOUT", "destination": "ba_1PbLfund0000000000000000",
        "failure_balance_transaction": None,
        "failure_code": "could_not_process" if status == "failed" else None,
        "failure_message": "The bank could not process this payout." if status == "failed" else None,
        "livemode": False, "metadata": {}, "method": "standard", "original_payout": None,
        "reconciliation_status": "completed" if status == "paid" else "not_applicable", "reversed_by": None,
        "source_type": "card", "statement_descriptor": None, "status": status, "type": "bank_account",
    }


def list_obj(data: list[dict[str, Any]], url: str, has_more: bool = False) -> dict[str, Any]:
    """A Stripe list: ``{"object": "list", "data": [...], "has_more": ..., "url": url}``."""
    return {"object": "list", "data": list(data), "has_more": has_more, "url": url}


def stripe_error(message: str, type: str = "invalid_request_error", code: str | None = None) -> dict[str, Any]:
    """Stripe's error body."""
    error: dict[str, Any] = {"type": type, "message": message}
    if code is not None:
        error["code"] = code
    return {"error": error}


# --------------------------------------------------------------------------- recorded responses


@dataclass(frozen=True)
class RecordedRequest:
    """One request RecordedStripe received: query and form as flat str -> str dicts."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    form: dict[str, str]


@dataclass
class _Recording:
    method: str
    path: str
    body: Any
    query: dict[str, str] | None
    status: int


@dataclass
class RecordedStripe:
    """A small Stripe stub on 127.0.0.1 and a free port, answering recorded responses.

    ``add(method, path, body, query=None, status=200)``: answer ``body`` (JSON) to
    ``method path``; with ``query`` only when the request's query parameters are exactly
    those (values compared as strings). The first recording that matches wins.
    Anything else: 404 with Stripe's error body. ``requests``: ``(method, path, query)``
    seen, in order; ``received``: the same with headers and form bodies.
    """

    recordings: list[_Recording] = field(default_factory=list)
    received: list[RecordedRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._server: BaseWSGIServer = make_server("127.0.0.1", 0, self._app, threaded=True)
        self.port: int = self._server.server_port
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"recorded-stripe:{self.port}", daemon=True)
        self._thread.start()

    def add(self, method: str, path: str, body: Any, query: Mapping[str, Any] | None = None,
            status: int = 200) -> None:
        """Record the answer to ``method path`` (``query``: exact query parameters to match)."""
        wanted = None if query is None else {str(k): str(v) for k, v in query.items()}
        with self._lock:
            self.recordings.append(_Recording(method.upper(), path, body, wanted, status))

    @property
    def requests(self) -> list[tuple[str, str, dict[str, str]]]:
        """``(method, path, query)`` of each request received, in order."""
        with self._lock:
            return [(r.method, r.path, r.query) for r in self.received]

    def stop(self) -> None:
        """Stop the server."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def __enter__(self) -> RecordedStripe:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _app(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        query = dict(parse_qsl(request.query_string.decode("latin-1"), keep_blank_values=True))
        form = dict(parse_qsl(request.get_data(as_text=True), keep_blank_values=True))
        seen = RecordedRequest(request.method, request.path, query, dict(request.headers), form)
        with self._lock:
            self.received.append(seen)
            match = next((r for r in self.recordings
                          if r.method == seen.method and r.path == seen.path
                          and (r.query is None or r.query == query)), None)
        if match is None:
            body: Any = stripe_error(f"Unrecognized request URL ({seen.method}: {seen.path}).")
            status = 404
        else:
            body, status = match.body, match.status
        response = Response(json.dumps(body), status=status, content_type="application/json",
                            headers={"Request-Id": f"req_{uuid.uuid4().hex[:14]}"})
        return response(environ, start_response)
