"""Registry actions as MCP tools: the tool list, and one tool call run through ``run_action``.

Everything here is synchronous Django code; ``server`` calls it from a worker thread.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import mcp_types as types
from django.db import close_old_connections, connections
from rest_framework.utils.encoders import JSONEncoder

from apps.system.authentication import operator_for_token
from apps.system.errors import as_application_error, error_body
from powernode.actors import Actor
from powernode.errors import NotAuthenticated, NotFound
from powernode.registry import all_actions, get_action, run_action

log = logging.getLogger(__name__)

INTERNAL_ERROR_MESSAGE = "The platform failed unexpectedly; the error is logged."


def tool_list() -> list[types.Tool]:
    """One tool per registered action: same name, description and input schema as GET /api/v1/actions/."""
    return [
        types.Tool(
            name=a.name,
            description=a.description,
            input_schema=a.input_schema,
            annotations=types.ToolAnnotations(read_only_hint=not a.mutates),
        )
        for a in all_actions()
    ]


def tool_input_schema(name: str) -> dict[str, Any] | None:
    try:
        return get_action(name).input_schema
    except NotFound:
        return None


def call_tool(*, name: str, arguments: Any, token: str | None) -> types.CallToolResult:
    """Run the action ``name`` as the operator owning ``token``; refusals become tool errors.

    The token is checked on every call (like every REST request), so a revoked token stops working
    at once, also in a long-lived stdio session. Runs in a worker thread: it owns its DB connection
    and closes it before returning.
    """
    close_old_connections()
    try:
        return _call(name=name, arguments=arguments, token=token)
    finally:
        # the worker thread may be retired by the pool at any time: never leave a connection in it
        connections.close_all()


def _call(*, name: str, arguments: Any, token: str | None) -> types.CallToolResult:
    try:
        try:
            get_action(name)
        except NotFound:
            raise NotFound(
                f"There is no tool named {name!r}. tools/list lists the tools "
                "(the actions of GET /api/v1/actions/).",
                details={"tool": name},
            )
        if token is None:
            raise NotAuthenticated("No operator token came with this MCP request.")
        actor = Actor.for_user(operator_for_token(token))
        output = run_action(name=name, actor=actor, payload={} if arguments is None else arguments)
    except Exception as exc:  # every failure is reported to the caller as a tool error
        err = as_application_error(exc)
        if err is None:
            log.exception("MCP tool %s failed unexpectedly", name)
            return internal_error_result()
        return error_result(error_body(err.type_name, err.message, err.details))
    return success_result(output)


def as_json(value: Any) -> Any:
    """The value as plain JSON types, encoded the way the REST API encodes it (UUIDs, datetimes ...)."""
    return json.loads(json.dumps(value, cls=JSONEncoder))


def success_result(output: dict[str, Any]) -> types.CallToolResult:
    data = as_json(output)
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=json.dumps(data))], structured_content=data
    )


def error_result(body: dict[str, Any]) -> types.CallToolResult:
    """A tool error carrying the REST error shape, as text and as structured content."""
    data = as_json(body)
    text = types.TextContent(type="text", text=json.dumps(data))
    return types.CallToolResult(content=[text], structured_content=data, is_error=True)


def internal_error_result() -> types.CallToolResult:
    """What a bug looks like to the caller: the REST API's 500 body; the details stay in the log."""
    return error_result(error_body("InternalError", INTERNAL_ERROR_MESSAGE))
