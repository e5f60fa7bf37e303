"""Strict fields for the wire (API.md "Conventions"; STACK.md lists the traps they close).

- integers: JSON integers only (no float, not even ``12.0``; no string, boolean or null),
  always with bounds;
- dates: exactly ``YYYY-MM-DD``; timestamps: ISO 8601 with ``T`` and an offset, returned
  in UTC with ``Z``;
- client ids: ``[A-Za-z0-9][A-Za-z0-9._:-]{0,63}`` as a whole string, never normalised;
- currencies: ISO 4217 codes the ledger knows, upper case.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

from marshmallow import ValidationError, fields, validate

from ledger.errors import UnknownCurrencyError
from ledger.money import exponent

MAX_MINOR = 10**12
CLIENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
DATE_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}")
TIMESTAMP_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})")


class StrictInteger(fields.Integer):
    """A JSON integer within ``[minimum, maximum]``; floats, strings, booleans refused."""

    def __init__(self, minimum: int, maximum: int, **kwargs: Any) -> None:
        super().__init__(strict=True, validate=validate.Range(minimum, maximum), **kwargs)
        self.metadata.setdefault("minimum", minimum)
        self.metadata.setdefault("maximum", maximum)

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
        self.metadata.setdefault("pattern", "^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")

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
            return date.fromisoformat(value)
        except ValueError as exc:
            raise ValidationError("Not a valid date.") from exc


class Timestamp(fields.DateTime):
    """An ISO 8601 timestamp with an offset in, UTC with ``Z`` out."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        if not isinstance(value, str) or not TIMESTAMP_TEXT.fullmatch(value):
            raise ValidationError("Must be an ISO 8601 timestamp with an offset, e.g. 2026-04-01T12:00:00Z.")
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise ValidationError("Not a valid timestamp.") from exc
        return parsed.astimezone(UTC)

    def _serialize(self, value: datetime | None, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        if value is None:
            return None
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


class Text(fields.String):
    """Free text of bounded length (names, references, reasons)."""

    def __init__(self, minimum: int = 1, maximum: int = 200, **kwargs: Any) -> None:
        super().__init__(validate=validate.Length(minimum, maximum), **kwargs)
