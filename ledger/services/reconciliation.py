"""The reconciliation report: every cent in the ledger against the outside world.

DOMAIN.md "Reconciliation": every Stripe charge, refund, dispute, fee and payout appears
in the ledger exactly once and every ledger funding has its Stripe counterpart; each
remittance is ``funded``, ``partially_funded`` (short by N), ``overfunded`` (credit of N),
``awaiting_funds`` or ``overdue``; money that matches no remittance is an exception kept
in suspense; the ledger itself balances. A report is stored once and never changed.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import date, datetime
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session
from sqlmodel import col

from ledger.db import Database, fetch
from ledger.ids import new_id
from ledger.pagination import Page, paginate
from ledger.services.remittances import remittance_status
from ledger.services.reports import CHECKS
from ledger.services.stripe_settlement import FEE_TYPES
from ledger.tables import (
    Account,
    Entry,
    Funding,
    LedgerTransaction,
    Reconciliation,
    Remittance,
    StripeBalanceTransaction,
    StripeDispute,
    StripePayment,
    StripePayout,
)

#: ledger transaction kinds summed into a report's ``activity`` (what moved since the last report)
ACTIVITY_KINDS = ("funding_received", "stripe_received", "stripe_refund", "stripe_dispute", "stripe_dispute_won",
                  "stripe_fee", "stripe_payout", "stripe_payout_failed", "funding_reversed")
_CASH_TYPES = {"charge": "charges", "payment": "charges", "refund": "refunds", "payment_refund": "refunds",
               "adjustment": "disputes", "payout": "payouts", "payout_failure": "payouts",
               **dict.fromkeys(FEE_TYPES, "fees")}


def last_stripe_cursor(db: Database) -> str | None:
    """The newest Stripe balance transaction the last successful reconciliation read."""
    return db.read(lambda s: s.scalar(
        select(col(Reconciliation.stripe_cursor)).where(col(Reconciliation.status) == "succeeded",
                                                        col(Reconciliation.stripe_cursor).is_not(None))
        .order_by(col(Reconciliation.seq).desc()).limit(1)))


def build_report(session: Session, today: date, since: datetime | None, now: datetime,
                 stripe: dict[str, Any]) -> dict[str, Any]:
    """The report's body, read in one snapshot: remittances, totals, activity, exceptions, checks."""
    statuses, by_status, exceptions = _remittances(session, today)
    exceptions += _unmatched_money(session) + _stripe_exceptions(session, stripe.get("configured", False))
    checks = [check(session) for check in CHECKS]
    totals = _totals(session)
    if stripe.get("configured"):
        # payouts and the balance may differ while a payout is in transit (Stripe takes it
        # when created, the ledger books it when paid); the rest must match to the cent
        exceptions += [{"type": "stripe_totals_differ", "currency": t["currency"], "line": line,
                        "ledger_minor": t["ledger"][line], "stripe_minor": t["stripe"][line],
                        "difference_minor": t["difference"][line]}
                       for t in totals for line in ("charges", "refunds", "disputes", "fees", "other")
                       if t["difference"][line]]
    exceptions += [{"type": "check_failed", "name": c.name, "detail": c.detail} for c in checks if not c.ok]
    return {
        "period": {"from": since.isoformat().replace("+00:00", "Z") if since else None,
                   "to": now.isoformat().replace("+00:00", "Z")},
        "stripe": stripe,
        "remittances": by_status,
        "remittance_statuses": statuses,
        "totals": totals,
        "payouts": _payouts(session),
        "activity": _activity(session, since, now),
        "exceptions": exceptions,
        "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in checks],
        # reconciles: the checks hold and every Stripe and unmatched cent is accounted for
        # (a remittance short or in credit is a status to act on, not a reconciliation failure)
        "ok": all(e["type"].startswith("remittance_") or e["type"] == "stripe_loss" for e in exceptions),
    }


def _remittances(session: Session, today: date) -> tuple[list[dict[str, Any]], list[dict[str, Any]],
                                                         list[dict[str, Any]]]:
    rows = session.scalars(select(Remittance).order_by(col(Remittance.seq))).all()
    statuses: list[dict[str, Any]] = []
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    exceptions: list[dict[str, Any]] = []
    for r in rows:
        status = remittance_status(r, today)
        short = max(0, r.amount_due_minor - r.amount_funded_minor)
        credit = max(0, r.amount_funded_minor - r.amount_due_minor)
        group = groups.setdefault((r.currency, status), {
            "currency": r.currency, "status": status, "count": 0, "amount_due_minor": 0,
            "amount_funded_minor": 0, "short_minor": 0, "credit_minor": 0, "reopened_minor": 0})
        group["count"] += 1
        for name, value in (("amount_due_minor", r.amount_due_minor), ("amount_funded_minor", r.amount_funded_minor),
                            ("short_minor", short), ("credit_minor", credit), ("reopened_minor", r.reopened_minor)):
            group[name] += value
        if status == "open":
            continue
        entry = {"remittance_id": r.id, "contributor_id": r.contributor_id, "member_id": r.member_id,
                 "currency": r.currency, "status": status, "amount_due_minor": r.amount_due_minor,
                 "amount_funded_minor": r.amount_funded_minor, "short_minor": short, "credit_minor": credit,
                 "reopened_minor": r.reopened_minor, "due_date": r.due_date.isoformat()}
        statuses.append(entry)
        if status in ("overdue", "overfunded", "partially_funded"):
            exceptions.append({"type": f"remittance_{status}", **entry})
    return statuses, sorted(groups.values(), key=lambda g: (g["currency"], g["status"])), exceptions


def _payouts(session: Session) -> list[dict[str, Any]]:
    """Every payout: its amount against the balance transactions it carried."""
    return [{"payout_id": p.id, "currency": p.currency, "status": p.status, "amount_minor": p.amount_minor,
             "booked_minor": p.booked_minor, "transactions": p.transactions_count,
             "transactions_net_minor": p.transactions_net_minor, "difference_minor": p.difference_minor,
             "reconciled": p.reconciled_at is not None}
            for p in session.scalars(select(StripePayout).order_by(col(StripePayout.seq)))]


def _unmatched_money(session: Session) -> list[dict[str, Any]]:
    left = col(Funding.amount_minor) - col(Funding.moved_minor) - col(Funding.returned_minor)
    rows = session.execute(select(col(Funding.id), col(Funding.currency), left, col(Funding.reference)).where(
        col(Funding.remittance_id).is_(None), col(Funding.status) == "recorded", left > 0)
        .order_by(col(Funding.seq))).all()
    return [{"type": "unmatched_money", "funding_id": fid, "currency": cur, "amount_minor": int(amount),
             "reference": ref, "detail": "in suspense until an administrator applies it"}
            for fid, cur, amount, ref in rows]


def _stripe_exceptions(session: Session, read_stripe: bool) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for p in session.scalars(select(StripePayment).where(
            (col(StripePayment.linked).is_(False) & (col(StripePayment.received_target_minor) > 0))
            | (col(StripePayment.received_booked_minor) < col(StripePayment.received_target_minor))
            | (col(StripePayment.refunded_booked_minor) < col(StripePayment.refunded_target_minor)))
            .order_by(col(StripePayment.seq))):
        out.append({"type": "stripe_payment_not_booked", "payment_intent_id": p.id, "currency": p.currency,
                    "amount_minor": p.received_target_minor - p.received_booked_minor
                    + p.refunded_target_minor - p.refunded_booked_minor,
                    "detail": "not linked to a remittance yet" if not p.linked else "more than received given back"})
    for p in session.scalars(select(StripePayment).where(col(StripePayment.lost_minor) > 0)
                             .order_by(col(StripePayment.seq))):
        out.append({"type": "stripe_loss", "payment_intent_id": p.id, "currency": p.currency,
                    "amount_minor": p.lost_minor,
                    "detail": "Stripe took back more than the payer had paid (booked to stripe_losses)"})
    for d in session.scalars(select(StripeDispute).where(
            (col(StripeDispute.withdrawn_booked_minor) < col(StripeDispute.withdrawn_target_minor))
            | (col(StripeDispute.reinstated_booked_minor) < col(StripeDispute.reinstated_target_minor)))
            .order_by(col(StripeDispute.seq))):
        out.append({"type": "stripe_dispute_not_booked", "dispute_id": d.id, "currency": d.currency,
                    "amount_minor": d.withdrawn_target_minor - d.withdrawn_booked_minor,
                    "detail": "its payment is not known to the ledger yet"})
    for bt in session.scalars(select(StripeBalanceTransaction).where(
            col(StripeBalanceTransaction.matched_to).is_(None)).order_by(col(StripeBalanceTransaction.seq))):
        out.append({"type": "stripe_transaction_not_in_ledger", "balance_transaction_id": bt.id,
                    "transaction_type": bt.type, "source_id": bt.source_id, "currency": bt.currency,
                    "amount_minor": bt.amount_minor})
    for po in session.scalars(select(StripePayout).where(
            col(StripePayout.difference_minor).is_not(None), col(StripePayout.difference_minor) != 0)
            .order_by(col(StripePayout.seq))):
        out.append({"type": "payout_difference", "payout_id": po.id, "currency": po.currency,
                    "amount_minor": po.amount_minor, "transactions_net_minor": po.transactions_net_minor,
                    "difference_minor": po.difference_minor})
    if read_stripe:
        seen = select(col(StripeBalanceTransaction.source_id))
        for p in session.scalars(select(StripePayment).where(
                col(StripePayment.received_booked_minor) > 0, col(StripePayment.charge_id).is_not(None),
                col(StripePayment.charge_id).not_in(seen)).order_by(col(StripePayment.seq))):
            out.append({"type": "funding_not_at_stripe", "payment_intent_id": p.id, "funding_id": p.funding_id,
                        "currency": p.currency, "amount_minor": p.received_booked_minor,
                        "detail": "no Stripe balance transaction for its charge"})
    return out


def _totals(session: Session) -> list[dict[str, Any]]:
    """Per currency: the ledger's Stripe figures against Stripe's balance transactions."""
    ledger: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    stripe: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for cur, received, refunded in session.execute(select(
            col(StripePayment.currency), func.sum(col(StripePayment.received_booked_minor)),
            func.sum(col(StripePayment.refunded_booked_minor))).group_by(col(StripePayment.currency))):
        ledger[cur]["charges"] += int(received or 0)
        ledger[cur]["refunds"] -= int(refunded or 0)
    for cur, out, back in session.execute(select(
            col(StripeDispute.currency), func.sum(col(StripeDispute.withdrawn_booked_minor)),
            func.sum(col(StripeDispute.reinstated_booked_minor))).group_by(col(StripeDispute.currency))):
        ledger[cur]["disputes"] += int(back or 0) - int(out or 0)
    for cur, booked in session.execute(select(col(StripePayout.currency), func.sum(col(StripePayout.booked_minor)))
                                       .group_by(col(StripePayout.currency))):
        ledger[cur]["payouts"] -= int(booked or 0)
    for name, cur, balance in session.execute(select(col(Account.name), col(Account.currency),
                                                     col(Account.balance_minor)).where(
            col(Account.name).in_(("fees", "cash:stripe")))):
        if name == "fees":
            ledger[cur]["fees"] = -int(balance)
        else:
            ledger[cur]["balance"] = int(balance)
    for kind, cur, amount, fee, net in session.execute(select(
            col(StripeBalanceTransaction.type), col(StripeBalanceTransaction.currency),
            func.sum(col(StripeBalanceTransaction.amount_minor)), func.sum(col(StripeBalanceTransaction.fee_minor)),
            func.sum(col(StripeBalanceTransaction.net_minor))).group_by(
            col(StripeBalanceTransaction.type), col(StripeBalanceTransaction.currency))):
        stripe[cur][_CASH_TYPES.get(kind, "other")] += int(amount or 0)
        stripe[cur]["fees"] -= int(fee or 0)
        stripe[cur]["balance"] += int(net or 0)
    lines = ("charges", "refunds", "disputes", "fees", "payouts", "other", "balance")
    result = []
    for cur in sorted(set(ledger) | set(stripe)):
        mine = {k: int(ledger[cur].get(k, 0)) for k in lines}
        theirs = {k: int(stripe[cur].get(k, 0)) for k in lines}
        result.append({"currency": cur, "ledger": mine, "stripe": theirs,
                       "difference": {k: mine[k] - theirs[k] for k in lines}})
    return result


def _activity(session: Session, since: datetime | None, now: datetime) -> list[dict[str, Any]]:
    """Per currency and kind: money the ledger moved between the last report and this one.

    Measured on each transaction's cash legs (its cash debits or its cash credits, the
    larger), so a refund shows what left Stripe, a dispute what was taken, a fee what it
    cost, and a payout (``cash:stripe`` to ``cash:bank``) what went to the bank, once.
    ``reopened``: the receivable legs of refunds and disputes (what the payer owes again)."""
    debit = func.sum(case((col(Entry.amount_minor) > 0, col(Entry.amount_minor)), else_=0)).label("debit")
    credit = func.sum(case((col(Entry.amount_minor) < 0, -col(Entry.amount_minor)), else_=0)).label("credit")
    where = [col(LedgerTransaction.kind).in_(ACTIVITY_KINDS), col(Account.kind) == "cash",
             col(LedgerTransaction.created_at) <= now]
    if since is not None:
        where.append(col(LedgerTransaction.created_at) > since)
    txn = (select(col(LedgerTransaction.currency).label("currency"), col(LedgerTransaction.kind).label("kind"),
                  debit, credit)
           .join(Entry, col(Entry.transaction_id) == col(LedgerTransaction.id))
           .join(Account, col(Account.seq) == col(Entry.account_seq))
           .where(*where)
           .group_by(col(LedgerTransaction.id), col(LedgerTransaction.currency), col(LedgerTransaction.kind))
           .subquery())
    larger = (txn.c.debit + txn.c.credit + func.abs(txn.c.debit - txn.c.credit)) // 2  # max(debit, credit), exact
    query = (select(txn.c.currency, txn.c.kind, func.count(), func.sum(larger))
             .group_by(txn.c.currency, txn.c.kind).order_by(txn.c.currency, txn.c.kind))
    rows = [{"currency": cur, "kind": kind, "count": int(n), "amount_minor": int(total or 0)}
            for cur, kind, n, total in session.execute(query)]
    reopened = (select(col(LedgerTransaction.currency), func.sum(col(Entry.amount_minor)))
                .join(Entry, col(Entry.transaction_id) == col(LedgerTransaction.id))
                .join(Account, col(Account.seq) == col(Entry.account_seq))
                .where(col(LedgerTransaction.kind).in_(("stripe_refund", "stripe_dispute")),
                       col(Account.kind) == "receivable", col(LedgerTransaction.created_at) <= now)
                .group_by(col(LedgerTransaction.currency)))
    if since is not None:
        reopened = reopened.where(col(LedgerTransaction.created_at) > since)
    rows += [{"currency": cur, "kind": "reopened", "count": None, "amount_minor": int(total or 0)}
             for cur, total in session.execute(reopened) if total]
    return rows


def store_report(db: Database, report: dict[str, Any], cursor: str | None, started_at: datetime,
                 finished_at: datetime, status: str = "succeeded") -> Reconciliation:
    """Write a report once (it is never changed afterwards)."""
    row = Reconciliation(id=new_id("rec"), status=status, stripe_cursor=cursor,
                         report_json=json.dumps(report, sort_keys=True, default=str),
                         started_at=started_at, finished_at=finished_at)

    def run(session: Session) -> Reconciliation:
        session.add(row)
        session.flush()
        session.refresh(row)
        return row

    return db.transaction(run)


def previous_finished_at(db: Database) -> datetime | None:
    """When the last successful reconciliation finished (its report covered up to then)."""
    return db.read(lambda s: s.scalar(select(col(Reconciliation.finished_at)).where(
        col(Reconciliation.status) == "succeeded").order_by(col(Reconciliation.seq).desc()).limit(1)))


def present(row: Reconciliation) -> dict[str, Any]:
    """A stored report as the API shows it."""
    return {"id": row.id, "status": row.status, "started_at": row.started_at, "finished_at": row.finished_at,
            **json.loads(row.report_json)}


def get_reconciliation(db: Database, reconciliation_id: str) -> Reconciliation:
    """One stored report; NotFoundError when unknown."""
    return db.read(lambda s: fetch(s, Reconciliation, reconciliation_id, "reconciliation"))


def list_reconciliations(db: Database, limit: int, cursor: str | None) -> Page[Reconciliation]:
    """Stored reports, newest first."""
    return db.read(lambda s: paginate(s, select(Reconciliation), Reconciliation.seq, limit, cursor))
