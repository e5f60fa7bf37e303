"""The ``Idempotency-Key`` header on POST requests (API.md "Conventions")."""

from __future__ import annotations

import hashlib
import json

from flask import Response, g, request

from api.context import db, now, principal
from api.errors import ApiError
from ledger.services import idempotency

HEADER = "Idempotency-Key"
MAX_PATH = 2000


def _valid(key: str) -> bool:
    return 1 <= len(key) <= 255 and all(0x20 <= ord(ch) <= 0x7E for ch in key)


def _path_key(path: str) -> str:
    """The path as stored with the key: itself, or when longer than the column (2,000
    characters) its start and its SHA-256, so a long path never fails the insert."""
    if len(path) <= MAX_PATH:
        return path
    return path[: MAX_PATH - 65] + "#" + hashlib.sha256(path.encode("utf-8", "surrogatepass")).hexdigest()


def begin() -> Response | None:
    """Claim the key for this request, or answer from the stored first answer."""
    if request.method != "POST" or HEADER not in request.headers:
        return None
    key = request.headers[HEADER]
    if not _valid(key):
        raise ApiError(400, "validation_error", "Idempotency-Key must be 1-255 printable ASCII characters",
                       {HEADER: ["Must be 1-255 printable ASCII characters."]})
    canonical = json.dumps({"body": g.get("json_body", {}), "query": sorted(request.args.items(multi=True))},
                           sort_keys=True, default=str, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    outcome = idempotency.claim(db(), principal().key_id, key, request.method, _path_key(request.path), digest,
                                now())
    if outcome.outcome == "mismatch":
        raise ApiError(400, "idempotency_error", "this Idempotency-Key was used with another request",
                       {HEADER: ["Already used with another request body."]})
    if outcome.outcome == "in_progress":
        raise ApiError(409, "idempotency_in_progress", "a request with this Idempotency-Key is still running",
                       headers={"Retry-After": "1"})
    if outcome.outcome == "replay":
        response = Response(outcome.body, status=outcome.status, mimetype="application/json")
        response.headers["Idempotent-Replayed"] = "true"
        return response
    g.idempotency_seq = outcome.seq
    return None


def end(response: Response) -> Response:
    """Store the answer (below 500) or release the claim (500 and above)."""
    seq = g.pop("idempotency_seq", None)
    if seq is not None:
        idempotency.finish(db(), seq, response.status_code, response.get_data(as_text=True))
    return response
