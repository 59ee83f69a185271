"""ASGI entry point (served by ``scripts/serve.sh``): /mcp is MCP Streamable HTTP, the rest Django.

Django is served by ``powernode.handlers.ASGIHandler`` (Django's, with its middleware hooks in the event
loop). The MCP app needs its lifespan run (it starts the MCP session manager); Django's ASGI handler has
none, so the ASGI lifespan goes to the MCP app only. Lifespan startup also starts the process's periodic
Docker probe thread (apps/docker_hosts/prober.py; POWERNODE_DOCKER_PROBE_INTERVAL_S=0 turns it off).
"""

from __future__ import annotations

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "powernode.settings")
django.setup(set_prefix=False)  # what django.core.asgi.get_asgi_application does, with our handler below

from powernode.handlers import ASGIHandler  # noqa: E402  (Django's middleware need the apps loaded)

# Django's ASGI handler, running Django's own middleware hooks in the event loop (powernode/handlers.py)
django_application = ASGIHandler()

from apps.docker_hosts.prober import start_background_prober  # noqa: E402
from apps.system.mcp.http import MCP_PATH, mcp_http_app  # noqa: E402  (needs django.setup() above)

mcp_application = mcp_http_app()


async def application(scope: dict, receive, send) -> None:  # noqa: ANN001 - ASGI callables
    if scope["type"] == "lifespan":
        # the periodic Docker probe of this server process (apps/docker_hosts/prober.py)
        start_background_prober()
        await mcp_application(scope, receive, send)
        return
    path = scope.get("path", "")
    if path == MCP_PATH or path.startswith(MCP_PATH + "/"):
        await mcp_application(scope, receive, send)
    else:
        await django_application(scope, receive, send)
