"""Strict fields for the wire (API.md "Conventions"; STACK.md lists the traps they close).

- integers: JSON integers only (no float, not even ``12.0``; no string, boolean or null),
  always with bounds;
- dates: exactly ``YYYY-MM-DD``; timestamps: ISO 8601 with ``T`` and an offset, returned
  in UTC with ``Z``; both in the years 1900 to 2999 (a date near year 1 or 9999 overflows
  once an offset, a plan period or a look-back is applied);
- client ids: ``[A-Za-z0-9][A-Za-z0-9._:-]{0,63}`` as a whole string, never normalised;
- currencies: ISO 4217 codes the ledger knows, upper case;
- free text: no NUL and no lone surrogate (neither database can store them: PostgreSQL
  refuses NUL in text, and a lone surrogate cannot be encoded as UTF-8);
- ledger ids in a body (``member_id``, ``link_code``, ``remittance_id``): letters, digits
  and ``_`` only;
- list queries: ``limit`` written in ASCII digits, ``cursor`` one the ledger made.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any, cast

from marshmallow import ValidationError, fields, validate

from ledger.errors import UnknownCurrencyError
from ledger.errors import ValidationError as LedgerValidationError
from ledger.money import exponent
from ledger.pagination import decode_cursor

MAX_MINOR = 10**12
MIN_YEAR, MAX_YEAR = 1900, 2999
YEARS_MESSAGE = f"Must be in the years {MIN_YEAR} to {MAX_YEAR}."
CLIENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
DATE_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}")
LEDGER_ID = re.compile(r"[A-Za-z0-9_]{1,40}")
LIMIT_TEXT = re.compile(r"[0-9]{1,9}")
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
TIMESTAMP_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})")


class StrictInteger(fields.Integer):
    """A JSON integer within ``[minimum, maximum]``; floats, strings, booleans refused."""

    def __init__(self, minimum: int, maximum: int, **kwargs: Any) -> None:
        super().__init__(strict=True, validate=validate.Range(minimum, maximum), **kwargs)
        cast(dict[str, Any], self.metadata).setdefault("minimum", minimum)
        cast(dict[str, Any], self.metadata).setdefault("maximum", maximum)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValidationError("Not a valid integer.")
        return value


def Minor(minimum: int = 1, maximum: int = MAX_MINOR, **kwargs: Any) -> StrictInteger:  # noqa: N802
    """An amount in minor units: ``1 <= x <= 10**12`` unless told otherwise."""
    return StrictInteger(minimum, maximum, **kwargs)


class ClientId(fields.String):
    """An id chosen by a client, matched as a whole (a trailing newline does not pass)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        cast(dict[str, Any], self.metadata).setdefault("pattern", "^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if not CLIENT_ID.fullmatch(text):
            raise ValidationError("Must match [A-Za-z0-9][A-Za-z0-9._:-]{0,63}.")
        return text


class Currency(fields.String):
    """An ISO 4217 code the ledger supports, upper case (``USD``)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            exponent(text)
        except UnknownCurrencyError as exc:
            raise ValidationError("Not a supported ISO 4217 currency code.") from exc
        return text


class ExactDate(fields.Date):
    """A date written exactly ``YYYY-MM-DD``."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> date:
        if not isinstance(value, str) or not DATE_TEXT.fullmatch(value):
            raise ValidationError("Must be a date written YYYY-MM-DD.")
        try:
            day = date.fromisoformat(value)
        except ValueError as exc:
            raise ValidationError("Not a valid date.") from exc
        if not MIN_YEAR <= day.year <= MAX_YEAR:
            raise ValidationError(YEARS_MESSAGE)
        return day


class Timestamp(fields.DateTime):
    """An ISO 8601 timestamp with an offset in, UTC with ``Z`` out."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        if not isinstance(value, str) or not TIMESTAMP_TEXT.fullmatch(value):
            raise ValidationError("Must be an ISO 8601 timestamp with an offset, e.g. 2026-04-01T12:00:00Z.")
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
        except (ValueError, OverflowError) as exc:
            raise ValidationError("Not a valid timestamp.") from exc
        if not MIN_YEAR <= parsed.year <= MAX_YEAR:
            raise ValidationError(YEARS_MESSAGE)
        return parsed

    def _serialize(self, value: datetime | None, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        if value is None:
            return None
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


class Text(fields.String):
    """Free text of bounded length (names, references, reasons), storable by both databases."""

    def __init__(self, minimum: int = 1, maximum: int = 200, **kwargs: Any) -> None:
        super().__init__(validate=validate.Length(minimum, maximum), **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if UNSTORABLE.search(text):
            raise ValidationError("Must not contain NUL or unpaired surrogate characters.")
        return text


class LedgerId(fields.String):
    """An id the ledger made (``mem_...``, ``lnk_...``, ``rem_...``) named in a request."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        cast(dict[str, Any], self.metadata).setdefault("pattern", "^[A-Za-z0-9_]{1,40}$")

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if not LEDGER_ID.fullmatch(text):
            raise ValidationError("Not a valid id.")
        return text


class Limit(fields.Integer):
    """``?limit=``: 1 to 500 written in ASCII digits (default 50)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(load_default=50, validate=validate.Range(1, 500), **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if not isinstance(value, str) or not LIMIT_TEXT.fullmatch(value):
            raise ValidationError("Not a valid integer.")
        return int(value)


class Cursor(fields.String):
    """``?cursor=``: the opaque ``next_cursor`` of an earlier page."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(load_default=None, validate=validate.Length(1, 100), **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            decode_cursor(text)
        except LedgerValidationError as exc:
            raise ValidationError("Not a valid cursor.") from exc
        return text
