"""Shapes shared by every resource: list queries, list pages, the error body."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields

from schemas.fields import Cursor, Limit, StrictInteger


class StrictSchema(Schema):
    """A schema that refuses unknown fields (the marshmallow default, stated)."""

    class Meta:
        unknown = "raise"


class ListQuery(StrictSchema):
    """``?limit=`` (1-500, default 50) and ``?cursor=`` (opaque)."""

    limit = Limit()
    cursor = Cursor()


def page_of(item: type[Schema], name: str) -> type[Schema]:
    """A list page schema ``{data: [item], has_more, next_cursor}``."""
    attrs: dict[str, Any] = {
        "data": fields.List(fields.Nested(item)),
        "has_more": fields.Boolean(),
        "next_cursor": fields.String(allow_none=True),
    }
    return Schema.from_dict(attrs, name=name)


class ErrorSchema(Schema):
    """The error body of API.md: ``{code, status, type, message, errors}``."""

    code = fields.Integer(required=True)
    status = fields.String(required=True)
    type = fields.String(required=True)
    message = fields.String(required=True)
    errors = fields.Dict(required=True)


class EmptySchema(StrictSchema):
    """A request with no fields."""


__all__ = ["EmptySchema", "ErrorSchema", "ListQuery", "StrictInteger", "StrictSchema", "page_of"]
