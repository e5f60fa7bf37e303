"""``pbl demo``: a realistic quarter through a live server, then a summary a person can check.

It starts the API on a free loopback port over a fresh SQLite file and acts as the outside
world: an administrator sets up three contributors, platforms enroll about 2,000 workers
(one portable account each, linked across platforms with link codes), some members elect
their split, each platform posts a quarter of monthly remittance CSVs with ``pbl import``,
and each remittance is paid: through Stripe when ``PBL_STRIPE_API_BASE`` points at a
running Stripe-compatible server (localstripe), each platform paying its remittance's
PaymentIntent and the server's webhook booking it; otherwise by bank transfers the
administrator records. One remittance is paid short and one over either way. It ends with
a reconciliation report.
"""

from __future__ import annotations

import logging
import os
import random
import secrets
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import click

from api.app import create_app
from ledger.config import Settings
from ledger.db import Database, make_engine
from ledger.migrate import upgrade
from ledger.money import BUCKETS
from ledger.services.keys import create_key
from pbl import demo_data
from pbl.client import ApiClient
from pbl.importer import import_file
from pbl.report import report_lines

SHORT_BY_MINOR = 12_345
OVER_BY_MINOR = 5_000


def last_full_quarter(today: date) -> date:
    """The first day of the last calendar quarter that is over."""
    this_quarter = date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
    previous = this_quarter - timedelta(days=1)
    return date(previous.year, 3 * ((previous.month - 1) // 3) + 1, 1)


@contextmanager
def live_server(settings: Settings, clock: Any = None, database: Database | None = None) -> Iterator[str]:
    """The API on waitress, on a free loopback port, in this process (on ``clock`` when given)."""
    from waitress.server import create_server

    logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # the demo's own load, not news
    app = create_app(settings, database, clock=clock)
    server = create_server(app, host="127.0.0.1", port=0, threads=8)
    port = server.socket.getsockname()[1]
    stopping = threading.Event()

    def serve() -> None:
        try:
            server.run()
        except OSError:  # the loop's sockets closed under it at shutdown
            if not stopping.is_set():
                raise

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stopping.set()
        logging.getLogger("waitress").setLevel(logging.CRITICAL)  # a task finishing as the loop closes
        server.task_dispatcher.shutdown()
        server.close()
        thread.join(timeout=5)


def run_demo(workers: int = 2000, seed: int = 2026, directory: Path | None = None) -> None:
    """Run the whole demo and print its summary."""
    folder = (directory or Path.cwd() / f"pbl-demo-{datetime.now():%Y%m%d-%H%M%S}").resolve()
    folder.mkdir(parents=True, exist_ok=False)
    settings = demo_settings(f"sqlite:///{folder / 'pbl.db'}", os.environ)
    engine = make_engine(settings.database_url)
    upgrade(engine)
    database = Database(engine)
    _, admin_key = create_key(database, "admin", "demo administrator", datetime.now(UTC))
    quarter = last_full_quarter(datetime.now(settings.timezone).date())
    echo(f"demo: {workers} workers, quarter starting {quarter}, data in {folder}")
    clock = DemoClock()
    with live_server(settings, clock, database) as url:
        admin = ApiClient(url, admin_key)
        platforms = set_up_contributors(admin, url, quarter)
        people = demo_data.make_workers(workers, random.Random(seed))
        members = enroll_everyone(admin, platforms, people)
        files = demo_data.write_quarter(folder / "csv", people, quarter, seed)
        plan_ids = {c: p["id"] for c, p in demo_data.plans(quarter).items()}
        remittances = []
        for contributor, path in files:
            rem = import_file(path, plan_ids[contributor], url, platforms[contributor].key)
            echo(f"  pbl import {path.name}: {rem['id']} lines={rem['line_count']} due={rem['amount_due_minor']}")
            remittances.append(rem)
        if settings.stripe_api_base:
            fund_through_stripe(admin, platforms, remittances, settings, url)
        else:
            echo("  PBL_STRIPE_API_BASE is not set: remittances are funded by bank transfers")
            fund_remittances(admin, remittances)
        accrue_a_month(admin, clock)
        spender = withdraw(admin, clock().year)
        print_summary(admin, members, folder, spender)
    engine.dispose()  # the last connection closed: SQLite folds its write-ahead log into pbl.db


def demo_settings(database_url: str, env: Any) -> Settings:
    """The demo's settings: Stripe when ``PBL_STRIPE_API_BASE`` is set (a test key and a
    fresh webhook secret unless the environment gives them)."""
    base = env.get("PBL_STRIPE_API_BASE") or None
    if base is None:
        return Settings(database_url=database_url)
    return Settings(database_url=database_url, stripe_api_base=base,
                    stripe_api_key=env.get("PBL_STRIPE_API_KEY") or "sk_test_pbl_demo",
                    stripe_webhook_secret=env.get("PBL_STRIPE_WEBHOOK_SECRET") or f"whsec_{secrets.token_hex(16)}")


def fund_through_stripe(admin: ApiClient, platforms: dict[str, ApiClient], remittances: list[dict[str, Any]],
                        settings: Settings, url: str) -> None:
    """Each platform pays its remittance's PaymentIntent on the Stripe test server, whose
    webhook books it. The second remittance is paid short by bank transfer instead, and
    the fourth gets a bank transfer on top of its card payment (a credit)."""
    import requests
    import stripe

    assert settings.stripe_api_base and settings.stripe_api_key and settings.stripe_webhook_secret
    hook = f"{settings.stripe_api_base.rstrip('/')}/_config/webhooks/pbl-demo-{secrets.token_hex(4)}"
    response = requests.post(hook, json={"url": f"{url}/v1/webhooks/stripe", "secret": settings.stripe_webhook_secret},
                             timeout=10)
    if response.status_code != 200:
        raise click.ClickException(f"could not register the demo's webhook with {settings.stripe_api_base} "
                                   f"(a localstripe server is expected): HTTP {response.status_code}")
    payer = stripe.StripeClient(settings.stripe_api_key, base_addresses={"api": settings.stripe_api_base})
    echo(f"  paying remittances through Stripe at {settings.stripe_api_base}")
    received = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    paid = []
    for index, rem in enumerate(remittances):
        if rem["amount_due_minor"] == 0:  # nothing owed (e.g. no worker reached a quarterly threshold yet)
            continue
        if index == 1:  # a bank transfer that falls short
            admin.post(f"/v1/remittances/{rem['id']}/fundings", {
                "amount_minor": rem["amount_due_minor"] - SHORT_BY_MINOR, "currency": rem["currency"],
                "reference": f"wire-{rem['external_id']}", "received_at": received})
            continue
        platform = platforms[rem["contributor_id"]]
        intent = platform.post(f"/v1/remittances/{rem['id']}/payment-intents")
        payer.v1.payment_intents.update(intent["payment_intent_id"], params={"payment_method": "pm_card_visa"})
        payer.v1.payment_intents.confirm(intent["payment_intent_id"])
        echo(f"    {rem['external_id']}: PaymentIntent {intent['payment_intent_id']} for {intent['amount_minor']} paid")
        paid.append(rem["id"])
        if index == 3:  # paid twice: by card, then a wire on top
            admin.post(f"/v1/remittances/{rem['id']}/fundings", {
                "amount_minor": OVER_BY_MINOR, "currency": rem["currency"],
                "reference": f"wire-extra-{rem['external_id']}", "received_at": received})
    deadline = time.monotonic() + 60
    waiting = set(paid)
    while waiting and time.monotonic() < deadline:
        waiting = {rid for rid in waiting if admin.get(f"/v1/remittances/{rid}")["short_minor"] > 0}
        if waiting:
            time.sleep(0.5)
    if waiting:
        echo(f"  {len(waiting)} payments' webhooks did not arrive in 60 s: reconciliation will look for them")
    else:
        echo(f"  webhooks booked all {len(paid)} card payments")


class DemoClock:
    """The server's clock: real time, until the demo moves it ahead to let a month pass."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance_to(self, instant: datetime) -> None:
        """From now on the server reads ``instant`` (plus the real time that passes)."""
        self.offset = instant - datetime.now(UTC)


#: the demo fund's crediting rates (annual basis points)
RATES = {"healthcare": 400, "retirement": 500, "training": 300}


def accrue_a_month(admin: ApiClient, clock: DemoClock) -> None:
    """Set crediting rates, let the clock run to the start of the month after next, and run
    accrual through yesterday: the rest of this month and all of the next, each date once,
    with each month's interest posted effective the first instant of the month after."""
    today = clock().date()
    for bucket, bps in RATES.items():
        admin.post("/v1/crediting-rates", {"bucket": bucket, "annual_rate_bps": bps,
                                           "effective_from": today.replace(day=1).isoformat()})
    following = (today.replace(day=28) + timedelta(days=4)).replace(day=1)
    after = (following.replace(day=28) + timedelta(days=4)).replace(day=1)
    clock.advance_to(datetime.combine(after, datetime.min.time(), UTC) + timedelta(hours=1))
    run = admin.post("/v1/jobs/accrual/runs", {})
    counts = run["counts"]
    interest = ", ".join(f"{_dollars(v)} {c}" for c, v in counts["interest_minor"].items()) or "nothing"
    echo(f"  accrual {run['key']}: {counts['dates']} dates from {counts['from']} over {counts['buckets']} buckets "
         f"at {', '.join(f'{b} {bps / 100:.2f}%' for b, bps in RATES.items())}; interest posted: {interest}")


def withdraw(admin: ApiClient, year: int) -> str:
    """A few withdrawals under ``year``'s limits: a premium paid, a course held then
    cancelled, and an IRA transfer over the member's available balance refused. Returns
    the member who made most of them."""
    admin.post("/v1/withdrawal-limits", {"bucket": "retirement", "purpose": "ira_transfer", "tax_year": year,
                                         "limit_minor": 750_000, "catch_up": [{"min_age": 50, "extra_minor": 110_000}]})
    healthcare: dict[str, int] = defaultdict(int)
    for c in admin.all_pages("/v1/contributions"):
        if c["status"] == "available":
            healthcare[c["member_id"]] += c["allocations"]["healthcare"]
    richest = sorted(healthcare, key=lambda m: -healthcare[m])[:2]
    for member_id in richest:
        health = admin.get(f"/v1/members/{member_id}/balances")["buckets"]["healthcare"]["available_minor"]
        premium = admin.post(f"/v1/members/{member_id}/withdrawals", {
            "bucket": "healthcare", "amount_minor": health // 2, "currency": "USD", "purpose": "premium",
            "payee": "Blue Cross health plan"})
        admin.post(f"/v1/withdrawals/{premium['id']}/complete")
        echo(f"  withdrawal {premium['id']}: {_dollars(health // 2)} premium paid for {member_id}")
    member_id = richest[0]
    retirement = admin.get(f"/v1/members/{member_id}/balances")["buckets"]["retirement"]["available_minor"]
    refused = admin.call("POST", f"/v1/members/{member_id}/withdrawals", json={
        "bucket": "retirement", "amount_minor": retirement + 100, "currency": "USD", "purpose": "ira_transfer",
        "payee": "IRA custodian"}, expect=(409,))
    echo(f"  an IRA transfer of {_dollars(retirement + 100)} refused: {refused['type']}")
    training = admin.get(f"/v1/members/{member_id}/balances")["buckets"]["training"]["available_minor"]
    if training > 0:
        course = admin.post(f"/v1/members/{member_id}/withdrawals", {
            "bucket": "training", "amount_minor": training, "currency": "USD", "purpose": "tuition",
            "payee": "Community college"})
        admin.post(f"/v1/withdrawals/{course['id']}/cancel")
        echo(f"  withdrawal {course['id']}: {_dollars(training)} tuition held, then cancelled")
    return member_id


def print_statement(admin: ApiClient, member_id: str, month: str) -> None:
    """One member's statement for ``month``: each bucket's opening and closing, and its entries."""
    body = admin.get(f"/v1/members/{member_id}/statements/{month}")
    echo(f"statement of {member_id} for {month}:")
    for bucket, f in body["buckets"].items():
        echo(f"  {bucket:<11} available {_dollars(f['opening_available_minor']):>11} -> "
             f"{_dollars(f['closing_available_minor']):>11}   pending {_dollars(f['opening_pending_minor']):>9} -> "
             f"{_dollars(f['closing_pending_minor']):>9}   held {_dollars(f['opening_held_minor'])} -> "
             f"{_dollars(f['closing_held_minor'])}")
    for e in body["entries"]:
        sign = "-" if e["amount_minor"] < 0 else " "
        echo(f"    {e['effective_at'][:16]} {e['bucket']:<11} {e['balance']:<9} {e['kind']:<22} "
             f"{sign}{_dollars(abs(e['amount_minor'])):>10}")


def echo(text: str) -> None:
    """Progress and summary lines."""
    click.echo(text)


def set_up_contributors(admin: ApiClient, url: str, quarter: date) -> dict[str, ApiClient]:
    """Create the three contributors, their plans and platform keys."""
    plans = demo_data.plans(quarter)
    platforms = {}
    for contributor in demo_data.CONTRIBUTORS:
        admin.post("/v1/contributors", contributor)
        admin.post(f"/v1/contributors/{contributor['id']}/plans", plans[contributor["id"]])
        key = admin.post("/v1/api-keys", {"role": "platform", "name": contributor["name"],
                                          "contributor_id": contributor["id"]})["key"]
        platforms[contributor["id"]] = ApiClient(url, key)
    return platforms


def enroll_everyone(admin: ApiClient, platforms: dict[str, ApiClient], people: list[demo_data.Worker]) -> list[str]:
    """Each worker's first platform opens their account; the others link with a link code."""

    def enroll(worker: demo_data.Worker) -> str:
        member_id = ""
        for contributor, ref in worker.refs.items():
            body: dict[str, Any] = {"worker_ref": ref}
            if member_id:
                body["link_code"] = admin.post(f"/v1/members/{member_id}/link-codes")["code"]
            member_id = platforms[contributor].post("/v1/enrollments", body)["member_id"]
        if worker.election:
            admin.put(f"/v1/members/{member_id}/allocation", worker.election)
        return member_id

    with ThreadPoolExecutor(max_workers=8) as pool:
        members = list(pool.map(enroll, people))
    linked = sum(1 for w in people if len(w.refs) > 1)
    echo(f"  enrolled {len(members)} members ({linked} on two or three platforms, "
         f"{sum(1 for w in people if w.election)} with their own election)")
    return members


def fund_remittances(admin: ApiClient, remittances: list[dict[str, Any]]) -> None:
    """Record a bank transfer per remittance: the second short, the fourth over, the rest exact."""
    received = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    for index, rem in enumerate(remittances):
        amount = rem["amount_due_minor"] - (SHORT_BY_MINOR if index == 1 else 0) + (OVER_BY_MINOR if index == 3 else 0)
        if amount <= 0:
            continue
        admin.post(f"/v1/remittances/{rem['id']}/fundings", {
            "amount_minor": amount, "currency": rem["currency"], "reference": f"wire-{rem['external_id']}",
            "received_at": received})


def _dollars(minor: int) -> str:
    return f"${minor // 100:,}.{minor % 100:02d}"


def print_summary(admin: ApiClient, members: list[str], folder: Path, spender: str) -> None:
    """What a person checks: members, contributions per bucket, remittances, verify."""
    contributions = admin.all_pages("/v1/contributions")
    totals: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(BUCKETS, 0))
    for c in contributions:
        for bucket in BUCKETS:
            totals[c["status"]][bucket] += c["allocations"][bucket]
    echo("")
    echo("== summary ==")
    echo(f"members: {len(set(members))}")
    echo(f"contributions: {len(contributions)} reports, {sum(c['amount_minor'] > 0 for c in contributions)} "
         f"with money, {_dollars(sum(c['amount_minor'] for c in contributions))} in all")
    echo(f"{'':12}{'healthcare':>16}{'retirement':>16}{'training':>16}{'total':>16}")
    for status in ("pending", "available"):
        row = totals[status]
        cells = "".join(f"{_dollars(row[b]):>16}" for b in BUCKETS)
        echo(f"{status:12}{cells}{_dollars(sum(row.values())):>16}")
    echo("remittances:")
    for rem in sorted(admin.all_pages("/v1/remittances"), key=lambda r: r["external_id"] or ""):
        extra = (f" short {_dollars(rem['short_minor'])}" if rem["short_minor"] else "") + \
                (f" credit {_dollars(rem['credit_minor'])}" if rem["credit_minor"] else "")
        echo(f"  {rem['external_id']:22} {rem['status']:17} due {_dollars(rem['amount_due_minor']):>12} "
             f"funded {_dollars(rem['amount_funded_minor']):>12}{extra}")
    report = admin.post("/v1/reconciliations")
    for text in report_lines(report):
        echo(text)
    print_statement(admin, spender, datetime.fromisoformat(report["finished_at"].replace("Z", "+00:00"))
                    .strftime("%Y-%m"))
    result = admin.post("/v1/ledger/verify")
    echo(f"verify: {'ok' if result['ok'] else 'FAILED'}")
    for check in result["checks"]:
        echo(f"  {'ok  ' if check['ok'] else 'FAIL'} {check['name']}: {check['detail']}")
    data = folder / "pbl.db"
    echo(f"data file: {data} (inspect it: PBL_DATABASE_URL=sqlite:///{data} .venv/bin/pbl verify)")
