"""Shapes shared by every resource: list queries, list pages, the error body."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, validate

from schemas.fields import StrictInteger


class StrictSchema(Schema):
    """A schema that refuses unknown fields (the marshmallow default, stated)."""

    class Meta:
        unknown = "raise"


class ListQuery(StrictSchema):
    """``?limit=`` (1-500, default 50) and ``?cursor=`` (opaque)."""

    limit = fields.Integer(load_default=50, validate=validate.Range(1, 500), strict=False)
    cursor = fields.String(load_default=None, validate=validate.Length(1, 100))


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

    code = fields.Integer()
    status = fields.String()
    type = fields.String()
    message = fields.String()
    errors = fields.Dict()


class EmptySchema(StrictSchema):
    """A request with no fields."""


__all__ = ["EmptySchema", "ErrorSchema", "ListQuery", "StrictInteger", "StrictSchema", "page_of"]
