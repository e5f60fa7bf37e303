"""A small HTTP client of the v1 API (for ``pbl import``, the demo and the benchmark)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import requests


class ApiCallError(Exception):
    """The API answered an error: ``status`` and the contract's error ``body``."""

    def __init__(self, method: str, path: str, status: int, body: Any) -> None:
        message = body.get("message") if isinstance(body, dict) else str(body)[:200]
        super().__init__(f"{method} {path} -> {status}: {message}")
        self.status, self.body = status, body


@dataclass
class ApiClient:
    """Calls ``base_url`` with ``Authorization: Bearer <key>``; returns parsed JSON bodies."""

    base_url: str
    key: str
    timeout_s: float = 120.0
    session: requests.Session = field(default_factory=requests.Session)

    def call(self, method: str, path: str, json: Any = None, params: dict[str, Any] | None = None,
             expect: tuple[int, ...] = (200, 201, 204)) -> Any:
        """One request; raises ApiCallError unless the status is in ``expect``."""
        response = self.session.request(method, self.base_url + path, json=json, params=params,
                                        headers={"Authorization": f"Bearer {self.key}"}, timeout=self.timeout_s)
        body = response.json() if response.content else None
        if response.status_code not in expect:
            raise ApiCallError(method, path, response.status_code, body)
        return body

    def get(self, path: str, **params: Any) -> Any:
        """GET with query parameters."""
        return self.call("GET", path, params=params or None)

    def post(self, path: str, json: Any = None, **kwargs: Any) -> Any:
        """POST a JSON body."""
        return self.call("POST", path, json=json if json is not None else {}, **kwargs)

    def put(self, path: str, json: Any) -> Any:
        """PUT a JSON body."""
        return self.call("PUT", path, json=json)

    def all_pages(self, path: str, **params: Any) -> list[Any]:
        """Every item of a list endpoint, following ``next_cursor``."""
        items: list[Any] = []
        cursor = None
        while True:
            page = self.get(path, limit=500, **params, **({"cursor": cursor} if cursor else {}))
            items.extend(page["data"])
            cursor = page["next_cursor"]
            if not page["has_more"]:
                return items
