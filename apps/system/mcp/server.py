"""The MCP server: the SDK's low-level ``Server`` with tools/list and tools/call over the action registry.

The low-level server does not check arguments against the input schemas; ``run_action`` does, as for
every transport. Tool calls run the Django ORM in worker threads, at most ``MAX_CONCURRENT_CALLS`` at a
time (each holds one DB connection while it runs).
"""

from __future__ import annotations

import contextvars
import dataclasses
import functools
import logging
from collections.abc import Callable, Mapping
from typing import Any

import anyio
import mcp_types as types
from mcp.server import Server, ServerRequestContext
from mcp.server.context import CallNext, HandlerResult

from apps.system.mcp import tools

log = logging.getLogger(__name__)

SERVER_NAME = "powernode"
MAX_CONCURRENT_CALLS = 8
INSTRUCTIONS = (
    "powernode operator actions. Every tool is an action of GET /api/v1/actions/ with the same input "
    "schema and output. A refused action is a tool error whose text is "
    '{"error": {"type", "message", "details"}}, as in the REST API.'
)

_NO_VALUE = object()
# tools/call "arguments" that are not a JSON object: the SDK would refuse them as a bare protocol
# error (-32602) before any handler runs; they go to run_action instead, which names the problem.
_non_object_arguments: contextvars.ContextVar[Any] = contextvars.ContextVar(
    "non_object_arguments", default=_NO_VALUE
)

TokenFor = Callable[[ServerRequestContext[Any, Any]], str | None]
"""Which operator token a request acts with (fixed for stdio, the request's Bearer token for HTTP)."""


def build_server(token_for: TokenFor) -> Server[Any]:
    """A server whose tools are the registry's actions, acting as the operator ``token_for`` names."""
    limiter = anyio.CapacityLimiter(MAX_CONCURRENT_CALLS)

    async def list_tools(
        ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=tools.tool_list())

    async def call_tool(
        ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        arguments = _non_object_arguments.get()
        if arguments is _NO_VALUE:
            arguments = params.arguments
        try:
            run = functools.partial(
                tools.call_tool, name=params.name, arguments=arguments, token=token_for(ctx)
            )
            return await anyio.to_thread.run_sync(run, limiter=limiter)
        except Exception:  # tools.call_tool reports its own failures; this is the thread hop failing
            log.exception("MCP tool call %s failed outside the action", params.name)
            return tools.internal_error_result()

    server: Server[Any] = Server(
        SERVER_NAME,
        version=_version(),
        instructions=INSTRUCTIONS,
        get_tool_input_schema=tools.tool_input_schema,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )
    server.middleware.append(_arguments_reach_the_action)
    return server


async def _arguments_reach_the_action(
    ctx: ServerRequestContext[Any, Any], call_next: CallNext
) -> HandlerResult:
    params = ctx.params
    if ctx.method == "tools/call" and isinstance(params, Mapping):
        arguments = params.get("arguments")
        if arguments is not None and not isinstance(arguments, Mapping):
            token = _non_object_arguments.set(arguments)
            try:
                return await call_next(dataclasses.replace(ctx, params={**params, "arguments": None}))
            finally:
                _non_object_arguments.reset(token)
    return await call_next(ctx)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("powernode")
    except PackageNotFoundError:
        return "0.1.0"
