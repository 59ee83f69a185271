"""Serve the MCP tools over stdio as one operator (``python manage.py mcp_server``)."""

from __future__ import annotations

from typing import Any

import anyio
from django.db import DatabaseError, connections
from mcp.server.stdio import stdio_server

from apps.system.authentication import operator_for_token
from apps.system.mcp.server import build_server
from powernode.errors import NotAuthenticated


class TokenRefused(Exception):
    """The stdio server cannot start: no token, or one that is not valid."""


def check_token(token: str | None) -> str:
    """The username the token acts for, or TokenRefused with a message for the operator."""
    if not token:
        raise TokenRefused(
            "No operator token: set POWERNODE_TOKEN or pass --token "
            "(python manage.py create_operator_token <username> makes one)."
        )
    try:
        user = operator_for_token(token)
    except NotAuthenticated as exc:
        raise TokenRefused(exc.message)
    except DatabaseError as exc:
        raise TokenRefused(f"The database is not usable ({exc}); run python manage.py migrate.")
    finally:
        # the server's worker threads open their own connections; this one would only idle
        connections.close_all()
    return user.get_username()


def serve_stdio(token: str) -> None:
    """Block serving MCP on stdin/stdout until the client closes stdin."""
    server = build_server(lambda ctx: token)

    async def main() -> Any:
        async with stdio_server() as (read_stream, write_stream):
            await server.run(read_stream, write_stream, server.create_initialization_options())

    anyio.run(main)
