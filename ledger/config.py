"""Settings, read from the environment when the app or a command starts (never at import)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ledger.errors import ValidationError
from ledger.money import exponent


@dataclass(frozen=True)
class Settings:
    """What API.md's "Command line" section lists.

    ``database_url``: SQLAlchemy URL (default an SQLite file ``pbl.db`` in the working
    directory); ``timezone``: the business timezone; ``currency``: the default ISO 4217
    code; ``remittance_due_day``: day of the month after closing when money is due.
    """

    database_url: str = "sqlite:///pbl.db"
    timezone: ZoneInfo = ZoneInfo("UTC")
    currency: str = "USD"
    remittance_due_day: int = 15
    stripe_api_key: str | None = None
    stripe_api_base: str | None = None
    stripe_webhook_secret: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``PBL_*`` variables; raises ValidationError on a bad value."""
        env = os.environ if environ is None else environ
        try:
            tz = ZoneInfo(env.get("PBL_TIMEZONE", "UTC"))
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValidationError(f"PBL_TIMEZONE is not a known timezone: {exc}") from exc
        currency = env.get("PBL_CURRENCY", "USD")
        exponent(currency)
        due_day_text = env.get("PBL_REMITTANCE_DUE_DAY", "15")
        if not due_day_text.isdigit() or not 1 <= int(due_day_text) <= 28:
            raise ValidationError("PBL_REMITTANCE_DUE_DAY must be a day from 1 to 28")
        return cls(
            database_url=env.get("PBL_DATABASE_URL") or "sqlite:///pbl.db",
            timezone=tz,
            currency=currency,
            remittance_due_day=int(due_day_text),
            stripe_api_key=env.get("PBL_STRIPE_API_KEY") or None,
            stripe_api_base=env.get("PBL_STRIPE_API_BASE") or None,
            stripe_webhook_secret=env.get("PBL_STRIPE_WEBHOOK_SECRET") or None,
        )
