"""``pbl import``: a remittance CSV posted through the API with a platform key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ledger.errors import ValidationError
from ledger.remittance_csv import read_remittance_csv
from pbl.client import ApiCallError, ApiClient


def import_file(path: Path, plan_id: str, url: str, key: str, external_id: str | None = None,
                currency: str = "USD", client: ApiClient | None = None) -> dict[str, Any]:
    """Read ``path``, post it as one remittance, return the remittance body.

    Raises ValidationError for a bad file (with line numbers; nothing posted) or for a
    remittance the API refused (its ``errors`` mapped back to file lines).
    """
    name = external_id or path.name
    lines = read_remittance_csv(path.read_text(encoding="utf-8"), plan_id, currency, name)
    api = client or ApiClient(url, key)
    try:
        result: dict[str, Any] = api.post("/v1/remittances", {"external_id": name, "currency": currency,
                                                              "lines": lines})
    except ApiCallError as exc:
        body = exc.body if isinstance(exc.body, dict) else {}
        by_line = {}
        for index, problems in (body.get("errors", {}).get("lines") or {}).items():
            file_line = lines[int(index)]["external_id"].rsplit(":", 1)[1]
            by_line[file_line] = [f"{field}: {'; '.join(msgs)}" for field, msgs in problems.items()]
        raise ValidationError(f"the API refused the remittance ({exc.status} {body.get('type')}): "
                              f"{body.get('message')}", {"lines": by_line} if by_line else {}) from exc
    return result
