"""The MCP server: the SDK's low-level ``Server`` with tools/list and tools/call over the action registry.

The low-level server does not check arguments against the input schemas; ``run_action`` does, as for
every transport. Tool calls run the Django ORM in worker threads, at most ``MAX_CONCURRENT_CALLS`` at a
time (each holds one DB connection while it runs).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

import anyio
import mcp_types as types
from mcp.server import Server, ServerRequestContext

from apps.system.mcp import tools

log = logging.getLogger(__name__)

SERVER_NAME = "powernode"
MAX_CONCURRENT_CALLS = 8
INSTRUCTIONS = (
    "powernode operator actions. Every tool is an action of GET /api/v1/actions/ with the same input "
    "schema and output. A refused action is a tool error whose text is "
    '{"error": {"type", "message", "details"}}, as in the REST API.'
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
        try:
            run = functools.partial(
                tools.call_tool, name=params.name, arguments=params.arguments, token=token_for(ctx)
            )
            return await anyio.to_thread.run_sync(run, limiter=limiter)
        except Exception:  # tools.call_tool reports its own failures; this is the thread hop failing
            log.exception("MCP tool call %s failed outside the action", params.name)
            return tools.error_result(
                {"error": {"type": "InternalError", "message": tools.INTERNAL_ERROR_MESSAGE, "details": {}}}
            )

    return Server(
        SERVER_NAME,
        version=_version(),
        instructions=INSTRUCTIONS,
        get_tool_input_schema=tools.tool_input_schema,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("powernode")
    except PackageNotFoundError:
        return "0.1.0"
