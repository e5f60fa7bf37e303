"""The remittance CSV recordkeepers send, turned into earnings reports (API.md "pbl import").

Header ``worker_id,period_start,period_end,gross_pay,tips,hours,jobs``; money in decimal
units of the currency (``1234.56``), hours in decimal hours (``37.5``), converted exactly
(never through a float). A value with more decimals than the currency or the minute
allows, or any other bad value, is an error naming its file line; nothing is posted then.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from ledger.errors import ValidationError
from ledger.money import exponent, parse_decimal_minor, parse_hours_minutes

COLUMNS = ("worker_id", "period_start", "period_end", "gross_pay", "tips", "hours", "jobs")
DATE_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}")
COUNT_TEXT = re.compile(r"[0-9]{1,7}")


@dataclass(frozen=True)
class CsvProblem:
    """One bad value: the file line (1 is the header), the column and what is wrong."""

    line: int
    column: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}, {self.column}: {self.message}"


def read_remittance_csv(text: str, plan_id: str, currency: str, remittance_external_id: str) -> list[dict[str, Any]]:
    """Parse the CSV into report bodies for ``POST /v1/remittances``.

    Line N of the file (the header is line 1) becomes a report with ``external_id``
    ``<remittance_external_id>:<N>``. Raises ValidationError listing every problem with
    its line number (``errors["lines"]`` maps line numbers to messages).
    """
    currency_exponent = exponent(currency)
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None or tuple(h.strip() for h in header) != COLUMNS:
        raise ValidationError(f"line 1: the header must be {','.join(COLUMNS)}")
    reports, problems = [], []
    for line_number, row in enumerate(reader, start=2):
        if not row or all(not cell.strip() for cell in row):
            continue
        report, row_problems = _report(row, line_number, plan_id, currency, currency_exponent, remittance_external_id)
        problems.extend(row_problems)
        if report is not None:
            reports.append(report)
    if problems:
        by_line: dict[str, list[str]] = {}
        for problem in problems:
            by_line.setdefault(str(problem.line), []).append(f"{problem.column}: {problem.message}")
        raise ValidationError(f"{len(problems)} problem(s) in the file; nothing was posted", {"lines": by_line})
    if not reports:
        raise ValidationError("the file has no lines")
    return reports


def _report(row: list[str], line: int, plan_id: str, currency: str, currency_exponent: int,
            remittance_external_id: str) -> tuple[dict[str, Any] | None, list[CsvProblem]]:
    if len(row) != len(COLUMNS):
        return None, [CsvProblem(line, "row", f"expected {len(COLUMNS)} values, found {len(row)}")]
    cells = dict(zip(COLUMNS, row, strict=True))
    problems: list[CsvProblem] = []
    values: dict[str, Any] = {}
    for column, parse in (
        ("period_start", _date), ("period_end", _date),
        ("gross_pay", lambda t: parse_decimal_minor(t, currency_exponent)),
        ("tips", lambda t: parse_decimal_minor(t, currency_exponent) if t else 0),
        ("hours", lambda t: parse_hours_minutes(t) if t else 0),
        ("jobs", _count),
    ):
        try:
            values[column] = parse(cells[column])
        except ValidationError as exc:
            problems.append(CsvProblem(line, column, f"{exc.message} ({cells[column]!r})"))
    if problems:
        return None, problems
    return {
        "external_id": f"{remittance_external_id}:{line}", "worker_ref": cells["worker_id"], "plan_id": plan_id,
        "period_start": values["period_start"], "period_end": values["period_end"], "currency": currency,
        "gross_earnings_minor": values["gross_pay"], "tips_minor": values["tips"],
        "engaged_minutes": values["hours"], "jobs": values["jobs"],
    }, []


def _date(text: str) -> str:
    if not DATE_TEXT.fullmatch(text):
        raise ValidationError("must be a date written YYYY-MM-DD")
    try:
        date.fromisoformat(text)
    except ValueError as exc:
        raise ValidationError("not a valid date") from exc
    return text


def _count(text: str) -> int:
    if text == "":
        return 0
    if not COUNT_TEXT.fullmatch(text):
        raise ValidationError("must be a whole number of jobs")
    return int(text)
