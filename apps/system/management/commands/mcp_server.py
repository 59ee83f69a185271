"""Serve every operator action as an MCP tool over stdio, acting as one operator."""

from __future__ import annotations

import os
import sys

from django.core.management.base import BaseCommand, CommandError

from apps.system.mcp.stdio import TokenRefused, check_token, serve_stdio


class Command(BaseCommand):
    help = (
        "Serve the operator actions as MCP tools on stdin/stdout, acting as the operator whose token is in "
        "POWERNODE_TOKEN or --token. Refuses to start without a valid token. (HTTP: /mcp on the ASGI app.)"
    )

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument("--token", default="", help="operator token (default: $POWERNODE_TOKEN)")

    def handle(self, *args, token: str, **options) -> None:
        token = token or os.environ.get("POWERNODE_TOKEN", "")
        try:
            username = check_token(token.strip())
        except TokenRefused as exc:
            raise CommandError(f"mcp_server refuses to start: {exc}")
        sys.stderr.write(f"powernode MCP server on stdio, acting as {username}\n")
        sys.stderr.flush()
        serve_stdio(token.strip())
