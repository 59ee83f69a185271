"""The MCP Streamable HTTP app (mounted at /mcp by powernode.asgi), behind the operators' Bearer tokens.

A missing or invalid token is refused with 401 before any MCP message is read; each tool call then
acts as the token's operator. Its lifespan must run (it starts the session manager): powernode.asgi
forwards the ASGI lifespan to it.

Stateless (the SDK's ``stateless_http``): no MCP session lives in a process's memory, every POST is
served on its own, so consecutive calls of one client may go to different platform processes behind a
load balancer without stickiness. Nothing of ours needs a session: each call carries its Bearer token,
and server-to-client requests (sampling, elicitation) are not used.
"""

from __future__ import annotations

from typing import Any

import anyio
from django.conf import settings
from django.db import connections
from mcp.server import ServerRequestContext
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette

from apps.system.authentication import operator_for_token
from apps.system.mcp.server import build_server
from powernode.errors import NotAuthenticated

MCP_PATH = "/mcp"


class OperatorTokenVerifier:
    """The SDK's TokenVerifier for operator tokens (the REST API's Bearer tokens)."""

    async def verify_token(self, token: str) -> AccessToken | None:
        found = await anyio.to_thread.run_sync(_operator_of, token)
        if found is None:
            return None
        user_id, username = found
        return AccessToken(token=token, client_id=username, subject=str(user_id), scopes=[])


def _operator_of(token: str) -> tuple[Any, str] | None:
    try:
        user = operator_for_token(token)
        return user.pk, user.get_username()
    except NotAuthenticated:
        return None
    finally:
        connections.close_all()


def request_token(ctx: ServerRequestContext[Any, Any]) -> str | None:
    """The Bearer token the HTTP request carrying this MCP message was authenticated with."""
    request = ctx.request
    user = request.scope.get("user") if request is not None and hasattr(request, "scope") else None
    if isinstance(user, AuthenticatedUser):
        return user.access_token.token
    access = get_access_token()
    return access.token if access is not None else None


def transport_security() -> TransportSecuritySettings:
    """Host/Origin checks from Django's ALLOWED_HOSTS ('*' switches them off, as it does for Django).

    Bearer tokens, not cookies, authenticate /mcp, so a DNS-rebound browser page has nothing to send;
    the Host check is kept for deployments that list their hosts.
    """
    hosts = [h for h in settings.ALLOWED_HOSTS if h]
    if "*" in hosts:
        return TransportSecuritySettings(enable_dns_rebinding_protection=False)
    allowed_hosts: list[str] = []
    allowed_origins: list[str] = []
    for host in hosts:
        # Django's ".example.com" (any subdomain) has no equivalent in the SDK's check: match the domain
        host = host.lstrip(".")
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"  # a bare IPv6 address, as it appears in a Host header
        allowed_hosts += [host, f"{host}:*"]
        allowed_origins += [f"{scheme}://{host}{port}" for scheme in ("http", "https") for port in ("", ":*")]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True, allowed_hosts=allowed_hosts, allowed_origins=allowed_origins
    )


def mcp_http_app() -> Starlette:
    """The Starlette app serving MCP at /mcp; run its lifespan (uvicorn does, through powernode.asgi)."""
    server = build_server(request_token)
    return server.streamable_http_app(
        streamable_http_path=MCP_PATH,
        stateless_http=True,
        transport_security=transport_security(),
        max_request_body_size=settings.DATA_UPLOAD_MAX_MEMORY_SIZE,
        token_verifier=OperatorTokenVerifier(),
        # AuthSettings is how the SDK turns Bearer checking on. issuer_url is required by the model but
        # unused: no OAuth routes or resource metadata are served (operator tokens are made by powernode).
        auth=AuthSettings(issuer_url="http://localhost", resource_server_url=None),
    )
