"""ASGI entry point (``uvicorn powernode.asgi:application``): /mcp is MCP Streamable HTTP, the rest Django.

The MCP app needs its lifespan run (it starts the MCP session manager); Django's ASGI handler has none,
so the ASGI lifespan goes to the MCP app only.
"""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "powernode.settings")
django_application = get_asgi_application()

from apps.system.mcp.http import MCP_PATH, mcp_http_app  # noqa: E402  (needs django.setup() above)

mcp_application = mcp_http_app()


async def application(scope: dict, receive, send) -> None:  # noqa: ANN001 - ASGI callables
    if scope["type"] == "lifespan":
        await mcp_application(scope, receive, send)
        return
    path = scope.get("path", "")
    if path == MCP_PATH or path.startswith(MCP_PATH + "/"):
        await mcp_application(scope, receive, send)
    else:
        await django_application(scope, receive, send)
