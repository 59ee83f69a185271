"""The operator action registry: one definition per action feeds REST, MCP, the action list and docs.

An action is a name, a description, a required ``system.*`` permission, a JSON Schema for its input
and a handler that calls one service function and shapes its output. ``run_action`` is the single
place where permission, size and input checks happen, whatever the transport.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema import ValidationError as SchemaError

from powernode import logs, metrics
from powernode.actors import Actor
from powernode.errors import NotAuthenticated, NotFound, PayloadTooLarge, PermissionDenied, ValidationError
from powernode.permissions import CODENAMES
from powernode.schema import example_input
from powernode.text import bad_text_path

MAX_INPUT_BYTES = 64 * 1024

Handler = Callable[..., dict[str, Any]]


@dataclass(frozen=True)
class Action:
    name: str
    description: str
    permission: str
    input_schema: dict[str, Any]
    handler: Handler = field(repr=False)
    mutates: bool = True
    #: an input to show (the browsable API's form); None: one is made from the schema's required fields
    example: dict[str, Any] | None = None

    @property
    def permission_codename(self) -> str:
        return self.permission.split(".", 1)[1]

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "permission": self.permission,
            "input_schema": self.input_schema,
            "example": self.example_input(),
        }

    def example_input(self) -> dict[str, Any]:
        return dict(self.example) if self.example is not None else example_input(self.input_schema)


_REGISTRY: dict[str, Action] = {}
_FORMATS = FormatChecker()


def action(
    name: str,
    *,
    permission: str,
    input_schema: dict[str, Any],
    description: str = "",
    mutates: bool = True,
    example: dict[str, Any] | None = None,
) -> Callable[[Handler], Handler]:
    """Register ``handler`` as the action ``name``. The docstring is the description when none given.

    ``example`` is an input to show operators (it must satisfy ``input_schema``).
    """
    if not permission.startswith("system.") or permission.split(".", 1)[1] not in CODENAMES:
        raise ValueError(f"action {name}: {permission!r} is not a system.* permission (powernode.permissions)")
    Draft202012Validator.check_schema(input_schema)
    if example is not None:
        Draft202012Validator(input_schema, format_checker=_FORMATS).validate(example)

    def register(handler: Handler) -> Handler:
        if name in _REGISTRY:
            raise ValueError(f"action {name!r} registered twice")
        text = description or " ".join((handler.__doc__ or "").split())
        _REGISTRY[name] = Action(name, text, permission, input_schema, handler, mutates, example)
        return handler

    return register


def all_actions() -> list[Action]:
    return sorted(_REGISTRY.values(), key=lambda a: a.name)


def get_action(name: str) -> Action:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise NotFound(
            f"There is no action named {name!r}. GET /api/v1/actions/ lists the actions.",
            details={"action": name},
        )


def check_permission(*, actor: Actor, action_: Action) -> None:
    user = actor.user
    if user is None or not getattr(user, "is_authenticated", False):
        raise NotAuthenticated("Authentication required: send 'Authorization: Bearer <operator token>'.")
    if not user.has_perm(action_.permission):
        raise PermissionDenied(
            f"{user.get_username()} lacks the permission {action_.permission} needed for {action_.name}.",
            details={"permission": action_.permission, "action": action_.name},
        )


def validate_input(*, action_: Action, payload: Any) -> dict[str, Any]:
    if payload is None:
        payload = {}
    if not isinstance(payload, dict):
        raise ValidationError(
            f"The input of {action_.name} must be a JSON object, got {type(payload).__name__}.",
            details={"action": action_.name},
        )
    try:
        size = len(json.dumps(payload))
    except (TypeError, ValueError):
        raise ValidationError("The input is not JSON-serialisable.")
    if size > MAX_INPUT_BYTES:
        raise PayloadTooLarge(
            f"The input of {action_.name} is {size} bytes; the limit is {MAX_INPUT_BYTES}.",
            details={"limit": MAX_INPUT_BYTES},
        )
    bad = bad_text_path(payload)
    if bad:
        raise ValidationError(
            f"Invalid input for {action_.name}: {bad}: must not contain NUL or unpaired surrogate characters",
            details={"action": action_.name, "fields": {bad: "must not contain NUL or unpaired surrogate characters"}},
        )
    validator = _validator(action_.name)
    errors = sorted(validator.iter_errors(payload), key=lambda e: (list(e.absolute_path), e.validator))
    if errors:
        fields = {_error_path(e): _error_message(e) for e in errors}
        first = next(iter(fields.items()))
        raise ValidationError(
            f"Invalid input for {action_.name}: {first[0]}: {first[1]}",
            details={"action": action_.name, "fields": fields},
        )
    return payload


_VALIDATORS: dict[str, Draft202012Validator] = {}


def _validator(name: str) -> Draft202012Validator:
    """One compiled validator per action (schemas never change after registration)."""
    validator = _VALIDATORS.get(name)
    if validator is None:
        validator = _VALIDATORS[name] = Draft202012Validator(_REGISTRY[name].input_schema, format_checker=_FORMATS)
    return validator


def run_action(*, name: str, actor: Actor, payload: Any) -> dict[str, Any]:
    """Check permission and input, then call the action's handler. Every transport ends here."""
    action_ = get_action(name)  # an unknown name is a 404 before any metric: no label from a caller's typo
    logs.bind(actor=actor.label)
    with metrics.timed(metrics.ACTION_SECONDS, with_result=True, action=action_.name):
        check_permission(actor=actor, action_=action_)
        params = validate_input(action_=action_, payload=payload)
        logs.bind(instance_id=params.get("instance_id"), host_id=params.get("host_id"))
        return action_.handler(actor=actor, **params)


def _error_path(error: SchemaError) -> str:
    if error.validator == "additionalProperties" and not error.absolute_path:
        return "(body)"
    if error.validator == "required":
        return str(error.message.split("'")[1]) if "'" in error.message else "(body)"
    return ".".join(str(p) for p in error.absolute_path) or "(body)"


def _error_message(error: SchemaError) -> str:
    v = error.validator
    if v == "required":
        return "this field is required"
    if v == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        return f"unknown field(s): {', '.join(extra)}"
    if v == "format":
        return f"{error.instance!r} is not a valid {error.validator_value}"
    if v == "type":
        return f"expected {error.validator_value}, got {type(error.instance).__name__}"
    if v == "maximum":
        return f"must be at most {error.validator_value}"
    if v == "minimum":
        return f"must be at least {error.validator_value}"
    if v == "maxLength":
        return f"must be at most {error.validator_value} characters"
    if v == "minLength":
        return "must not be empty" if error.validator_value == 1 else f"needs {error.validator_value}+ characters"
    if v == "enum":
        return f"must be one of {', '.join(map(str, error.validator_value))}"
    if v == "pattern":
        return f"{error.instance!r} does not have the expected form"
    if v == "not" and error.validator_value == {}:  # a field that is named only to be refused
        return str(error.schema.get("description") or "this field is not accepted")
    return error.message
