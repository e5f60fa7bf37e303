"""A reconciliation report as text, for ``pbl reconcile`` and the demo's summary."""

from __future__ import annotations

from typing import Any


def report_lines(report: dict[str, Any]) -> list[str]:
    """Readable lines: status counts and amounts, Stripe against the ledger, exceptions, checks."""
    lines = [f"reconciliation {report['id']} at {report['finished_at']}: {'OK' if report['ok'] else 'NOT OK'}"]
    stripe = report.get("stripe") or {}
    if stripe.get("configured"):
        lines.append(f"  stripe: {stripe.get('transactions_read', 0)} balance transactions read, "
                     f"{stripe.get('payouts_reconciled', 0)} payouts reconciled")
    else:
        lines.append("  stripe: not configured (remittances and the ledger only)")
    lines.append("  remittances:")
    for g in report.get("remittances", []):
        lines.append(f"    {g['currency']} {g['status']:<17} {g['count']:>6}  due {g['amount_due_minor']:>14}  "
                     f"funded {g['amount_funded_minor']:>14}  short {g['short_minor']:>12}  "
                     f"credit {g['credit_minor']:>10}")
    for t in report.get("totals", []):
        diff = {k: v for k, v in t["difference"].items() if v}
        lines.append(f"  {t['currency']} ledger vs stripe: charges {t['ledger']['charges']}/{t['stripe']['charges']}, "
                     f"refunds {t['ledger']['refunds']}/{t['stripe']['refunds']}, fees {t['ledger']['fees']}/"
                     f"{t['stripe']['fees']}, payouts {t['ledger']['payouts']}/{t['stripe']['payouts']}"
                     + (f"; differences {diff}" if diff else "; no difference"))
    exceptions = report.get("exceptions", [])
    lines.append(f"  exceptions: {len(exceptions)}")
    for e in exceptions[:20]:
        if e["type"].startswith("remittance_"):
            lines.append(f"    {e['type']}: {e['remittance_id']} ({e['contributor_id'] or e['member_id']}) "
                         f"due {e['amount_due_minor']} funded {e['amount_funded_minor']} short {e['short_minor']} "
                         f"credit {e['credit_minor']} {e['currency']}, due date {e['due_date']}")
            continue
        fields = ", ".join(f"{k}={v}" for k, v in e.items() if k != "type" and v is not None)
        lines.append(f"    {e['type']}: {fields}")
    if len(exceptions) > 20:
        lines.append(f"    ... and {len(exceptions) - 20} more")
    failed = [c for c in report.get("checks", []) if not c["ok"]]
    lines.append(f"  ledger checks: {len(report.get('checks', [])) - len(failed)} of "
                 f"{len(report.get('checks', []))} hold")
    return lines
