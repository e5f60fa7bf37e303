"""Marshmallow schemas: the wire shapes, validation only."""
