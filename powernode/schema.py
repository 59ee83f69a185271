"""Small builders for action input JSON Schemas, so each action's schema reads like its signature."""

from __future__ import annotations

from typing import Any

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"


def obj(required: dict[str, Any] | None = None, optional: dict[str, Any] | None = None) -> dict[str, Any]:
    required = required or {}
    optional = optional or {}
    schema: dict[str, Any] = {"type": "object", "properties": {**required, **optional}, "additionalProperties": False}
    if required:  # OpenAPI 3.0 refuses an empty "required" list
        schema["required"] = list(required)
    return schema


def uuid_(description: str = "") -> dict[str, Any]:
    return _d({"type": "string", "format": "uuid"}, description)


def string(description: str = "", *, max_length: int = 200, min_length: int = 1, pattern: str = "") -> dict:
    schema: dict[str, Any] = {"type": "string", "minLength": min_length, "maxLength": max_length}
    if pattern:
        schema["pattern"] = pattern
    return _d(schema, description)


def name(description: str = "", *, max_length: int = 100) -> dict[str, Any]:
    return string(description, max_length=max_length, pattern=NAME_PATTERN)


def integer(description: str = "", *, minimum: int | None = None, maximum: int | None = None) -> dict:
    schema: dict[str, Any] = {"type": "integer"}
    if minimum is not None:
        schema["minimum"] = minimum
    if maximum is not None:
        schema["maximum"] = maximum
    return _d(schema, description)


def boolean(description: str = "") -> dict[str, Any]:
    return _d({"type": "boolean"}, description)


def enum(values: list[str], description: str = "") -> dict[str, Any]:
    return _d({"type": "string", "enum": values}, description)


def _d(schema: dict[str, Any], description: str) -> dict[str, Any]:
    if description:
        schema["description"] = description
    return schema
