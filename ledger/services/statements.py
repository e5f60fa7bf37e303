"""Member statements: a month of one member's buckets, and a year's summary for tax time.

API.md "Statement": for each bucket and balance (pending, available, held) the opening
balance plus the month's entries equals the closing balance, to the minor unit. The month
is a business month (``PBL_TIMEZONE``); an entry belongs to the month its ``effective_at``
falls in (interest for January is effective the first instant of February, so it opens
February's statement, as DOMAIN.md "Accrual" says).
"""

from __future__ import annotations

import csv
import io
import re
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, date, datetime, time
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session
from sqlmodel import col

from ledger.db import Database
from ledger.errors import ValidationError
from ledger.money import BUCKETS
from ledger.postings import STATES
from ledger.principal import Principal
from ledger.services.members import load_member
from ledger.services.reports import MemberEntry, to_member_entry
from ledger.tables import Account, Entry, Withdrawal

#: entry kinds that are money a contributor (or the member) put in, net of voids
CONTRIBUTED = ("contribution", "contribution_void", "stipend")
#: ``YYYY-MM`` in ASCII digits (``str.isdigit`` would let "２０２６" or "²" through)
MONTH_TEXT = re.compile(r"[0-9]{4}-[0-9]{2}")


def _first_instant(year: int, month: int, tz: ZoneInfo) -> datetime:
    return datetime.combine(date(year, month, 1), time(0), tz).astimezone(UTC)


def month_bounds(month: str, tz: ZoneInfo, today: date) -> tuple[datetime, datetime]:
    """``"2026-04"`` -> the first instants of April and May 2026 in ``tz``, in UTC.

    ValidationError for text that is not ``YYYY-MM`` or a month that has not begun.
    """
    if not MONTH_TEXT.fullmatch(month) or not 1 <= int(month[5:]) <= 12:
        raise ValidationError("month must be YYYY-MM", {"month": ["Must be YYYY-MM."]})
    year, number = int(month[:4]), int(month[5:])
    if year < 1900 or (year, number) > (today.year, today.month):
        raise ValidationError("that month is out of range",
                              {"month": ["Must be a month from 1900-01 to the current month."]})
    following = (year + 1, 1) if number == 12 else (year, number + 1)
    return _first_instant(year, number, tz), _first_instant(*following, tz)


def _accounts(session: Session, member_id: str, currency: str) -> dict[int, tuple[str, str]]:
    return {cast(int, seq): (str(bucket), str(state)) for seq, bucket, state in session.execute(
        select(col(Account.seq), col(Account.bucket), col(Account.state)).where(
            col(Account.member_id) == member_id, col(Account.currency) == currency, col(Account.kind) == "member"))}


def _balances_before(session: Session, seqs: list[int], instant: datetime) -> dict[int, int]:
    """Each account's balance (member terms) just before ``instant``."""
    if not seqs:
        return {}
    return {seq: -int(total) for seq, total in session.execute(
        select(col(Entry.account_seq), func.sum(col(Entry.amount_minor))).where(
            col(Entry.account_seq).in_(seqs), col(Entry.effective_at) < instant).group_by(col(Entry.account_seq)))}


def statement(db: Database, principal: Principal, member_id: str, month: str, currency: str, tz: ZoneInfo,
              today: date) -> dict[str, Any]:
    """The month's statement (API.md "Statement"). NotFoundError for a member out of scope."""
    start, end = month_bounds(month, tz, today)

    def run(session: Session) -> dict[str, Any]:
        load_member(session, principal, member_id)
        accounts = _accounts(session, member_id, currency)
        opening = _balances_before(session, list(accounts), start)
        rows = session.execute(select(Entry).where(
            col(Entry.account_seq).in_(list(accounts) or [-1]), col(Entry.effective_at) >= start,
            col(Entry.effective_at) < end).order_by(col(Entry.effective_at), col(Entry.seq))).scalars().all()
        entries = [to_member_entry(e, *accounts[e.account_seq]) for e in rows]
        buckets: dict[str, dict[str, int]] = {}
        for bucket in BUCKETS:
            shaped: dict[str, int] = {}
            for state in STATES:
                seqs = [s for s, (b, st) in accounts.items() if b == bucket and st == state]
                shaped[f"opening_{state}_minor"] = sum(opening.get(s, 0) for s in seqs)
            buckets[bucket] = shaped
        moved: dict[tuple[str, str], int] = defaultdict(int)
        for e in entries:
            moved[(e.bucket, e.balance)] += e.amount_minor
        for bucket in BUCKETS:
            for state in STATES:
                buckets[bucket][f"closing_{state}_minor"] = (buckets[bucket][f"opening_{state}_minor"]
                                                             + moved[(bucket, state)])
        return {"member_id": member_id, "month": month, "currency": currency, "buckets": buckets,
                "entries": [_entry(e) for e in entries], "totals_by_contributor": _by_contributor(entries)}

    return db.read(run, snapshot=True)


def _entry(e: MemberEntry) -> dict[str, Any]:
    return {"id": e.id, "transaction_id": e.transaction_id, "effective_at": e.effective_at, "bucket": e.bucket,
            "balance": e.balance, "kind": e.kind, "contributor_id": e.contributor_id, "amount_minor": e.amount_minor,
            "balance_after_minor": e.balance_after_minor}


def _by_contributor(entries: list[MemberEntry]) -> list[dict[str, Any]]:
    """What each contributor put in (null: the member's own money), net of voids."""
    return _totals(e for e in entries if e.balance == "pending" and e.kind in CONTRIBUTED)


def _paid_in(entries: list[MemberEntry]) -> list[dict[str, Any]]:
    """What each contributor (null: the member) paid in: money that became available in the
    period because its contributor's money arrived (pending contributions are not paid yet)."""
    return _totals(e for e in entries if e.balance == "available" and e.kind == "funding_applied")


def _totals(entries: Iterable[MemberEntry]) -> list[dict[str, Any]]:
    totals: dict[str | None, int] = defaultdict(int)
    for e in entries:
        totals[e.contributor_id] += e.amount_minor
    return [{"contributor_id": c, "amount_minor": amount}
            for c, amount in sorted(totals.items(), key=lambda item: (item[0] is None, item[0] or ""))]


def statement_csv(body: dict[str, Any]) -> str:
    """A statement as CSV: one row per opening balance, entry and closing balance."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["line", "effective_at", "bucket", "balance", "kind", "contributor_id", "amount_minor",
                     "balance_after_minor", "entry_id", "transaction_id"])
    for bucket, figures in body["buckets"].items():
        for state in STATES:
            writer.writerow(["opening", "", bucket, state, "", "", figures[f"opening_{state}_minor"], "", "", ""])
    for e in body["entries"]:
        at = e["effective_at"].astimezone(UTC).isoformat().replace("+00:00", "Z")
        writer.writerow(["entry", at, e["bucket"], e["balance"], e["kind"], e["contributor_id"] or "",
                         e["amount_minor"], e["balance_after_minor"], e["id"], e["transaction_id"]])
    for bucket, figures in body["buckets"].items():
        for state in STATES:
            writer.writerow(["closing", "", bucket, state, "", "", figures[f"closing_{state}_minor"], "", "", ""])
    for total in body["totals_by_contributor"]:
        writer.writerow(["contributed", "", "", "", "", total["contributor_id"] or "self", total["amount_minor"],
                         "", "", ""])
    return out.getvalue()


def tax_summary(db: Database, principal: Principal, member_id: str, year: int, currency: str, tz: ZoneInfo,
                today: date) -> dict[str, Any]:
    """A year's summary for tax time: what each contributor paid in (contributions funded in
    the year), interest credited, and withdrawals by bucket and purpose (completed and still
    held)."""
    if not 1900 <= year <= today.year:
        raise ValidationError("that year is out of range", {"year": ["Must be a year from 1900 to the current year."]})
    start, end = _first_instant(year, 1, tz), _first_instant(year + 1, 1, tz)

    def run(session: Session) -> dict[str, Any]:
        load_member(session, principal, member_id)
        accounts = _accounts(session, member_id, currency)
        rows = session.execute(select(Entry).where(
            col(Entry.account_seq).in_(list(accounts) or [-1]),
            and_(col(Entry.effective_at) >= start, col(Entry.effective_at) < end))).scalars().all()
        entries = [to_member_entry(e, *accounts[e.account_seq]) for e in rows]
        interest = sum(e.amount_minor for e in entries if e.kind == "interest")
        withdrawals: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: {"completed_minor": 0,
                                                                                  "held_minor": 0})
        for bucket, purpose, status, amount in session.execute(
                select(col(Withdrawal.bucket), col(Withdrawal.purpose), col(Withdrawal.status),
                       func.sum(col(Withdrawal.amount_minor))).where(
                    col(Withdrawal.member_id) == member_id, col(Withdrawal.tax_year) == year,
                    col(Withdrawal.currency) == currency, col(Withdrawal.status).in_(("held", "completed")))
                .group_by(col(Withdrawal.bucket), col(Withdrawal.purpose), col(Withdrawal.status))):
            withdrawals[(bucket, purpose)][f"{status}_minor"] += int(amount)
        return {"member_id": member_id, "year": year, "currency": currency,
                "totals_by_contributor": _paid_in(entries), "interest_minor": interest,
                "withdrawals": [{"bucket": b, "purpose": p, **v} for (b, p), v in sorted(withdrawals.items())]}

    return db.read(run, snapshot=True)
