"""Strict JSON bodies (API.md "Conventions"; STACK.md: Flask and webargs are lenient).

A body must be a JSON object with no duplicate key, no bare ``NaN``/``Infinity``, nesting
at most 32 levels and no number longer than 4,000 digits; anything else is 400
``malformed_json``. Numbers with a fraction or exponent are parsed as ``Decimal`` (never
float) so that the schemas can refuse them with a 422 on the field.
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Any

from flask import Request, g
from webargs import core
from webargs.flaskparser import FlaskParser

MAX_DEPTH = 32
MAX_NUMBER_DIGITS = 4000
JSON_MIMETYPES = ("application/json",)


class MalformedJSON(Exception):
    """A body that is not a strict JSON object (400 ``malformed_json``)."""


def _constant(name: str) -> Any:
    raise MalformedJSON(f"{name} is not valid JSON")


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise MalformedJSON(f"duplicate key {key[:50]!r}")
        result[key] = value
    return result


def _integer(text: str) -> int:
    if len(text) > MAX_NUMBER_DIGITS:
        raise MalformedJSON("a number is too long to parse")
    return int(text)


def _fraction(text: str) -> Decimal:
    if len(text) > MAX_NUMBER_DIGITS:
        raise MalformedJSON("a number is too long to parse")
    try:
        return Decimal(text)
    except InvalidOperation as exc:
        raise MalformedJSON("a number cannot be parsed") from exc


def _depth(value: Any) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            if deepest > MAX_DEPTH:
                return deepest
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, level + 1) for child in children)
    return deepest


def parse_body(data: bytes) -> dict[str, Any]:
    """Parse a request body strictly; raises MalformedJSON."""
    try:
        value = json.loads(data, parse_constant=_constant, object_pairs_hook=_object,
                           parse_int=_integer, parse_float=_fraction)
    except RecursionError as exc:
        raise MalformedJSON(f"nesting deeper than {MAX_DEPTH} levels") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        if isinstance(exc, MalformedJSON):
            raise
        raise MalformedJSON(f"not valid JSON: {str(exc)[:200]}") from exc
    if not isinstance(value, dict):
        raise MalformedJSON("the body must be a JSON object")
    if _depth(value) > MAX_DEPTH:
        raise MalformedJSON(f"nesting deeper than {MAX_DEPTH} levels")
    return value


def load_request_body(request: Request) -> None:
    """Parse the body of a POST/PUT/PATCH into ``g.json_body`` (empty body: ``{}``)."""
    data = request.get_data(cache=True)
    if not data:
        g.json_body = {}
        return
    if request.mimetype not in JSON_MIMETYPES:
        raise MalformedJSON("the body must be JSON, sent with Content-Type: application/json")
    g.json_body = parse_body(data)


class StrictParser(FlaskParser):
    """webargs parser reading the body parsed by ``load_request_body``."""

    def _raw_load_json(self, req: Request) -> Any:
        return g.get("json_body", core.missing)
