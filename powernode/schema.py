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


# -- example inputs (the browsable API pre-fills its form with one) --------------------------------------

_PLACEHOLDER_UUID = "00000000-0000-0000-0000-000000000000"


def example_input(schema: dict[str, Any]) -> dict[str, Any]:
    """A plausible input for ``schema``: its required fields, each with a value its own schema accepts.

    Values come from the field's ``examples``/``default``/``enum``, an "e.g. …" in its description, or a
    placeholder of its type (a zero UUID for ids, ``example-1`` for names); an id still has to be
    replaced by a real one, but the shape is right.
    """
    properties = schema.get("properties", {})
    return {key: _example_value(key, properties.get(key, {})) for key in schema.get("required", [])}


def _example_value(key: str, schema: dict[str, Any]) -> Any:
    from jsonschema import Draft202012Validator, FormatChecker

    validator = Draft202012Validator(schema, format_checker=FormatChecker())
    for candidate in _candidates(key, schema):
        if validator.is_valid(candidate):
            return candidate
    return None


def _candidates(key: str, schema: dict[str, Any]) -> list[Any]:
    found: list[Any] = [*schema.get("examples", [])]
    found += [schema[k] for k in ("default", "const") if k in schema]
    found += schema.get("enum", [])[:1]
    for option in schema.get("oneOf", []) + schema.get("anyOf", []):
        found += _candidates(key, option)
    kind = schema.get("type")
    if kind == "string" or (kind is None and not found):
        hint = schema.get("description", "").partition("e.g. ")[2].split(",")[0].split(" ")[0].strip()
        if hint:
            found.append(hint)
        stem = key.removesuffix("_id").replace("_", "-")
        if schema.get("format") == "uuid":
            found.append(_PLACEHOLDER_UUID)
        elif key.endswith("_id") and schema.get("pattern"):
            found.append(f"{stem}-{_PLACEHOLDER_UUID}")  # prefixed ids such as host-<uuid>
        found += ["example-1" if key == "name" else f"my-{stem}", "example"]
    elif kind == "integer" or kind == "number":
        found += [schema.get("minimum", 1), schema.get("maximum", 1)]
    elif kind == "boolean":
        found.append(False)
    elif kind == "array":
        item = _candidates(key, schema.get("items", {}))[:1]
        found += [item * max(int(schema.get("minItems", 1)), 1) if item else []]
    elif kind == "object":
        found.append(example_input(schema))
    return found
