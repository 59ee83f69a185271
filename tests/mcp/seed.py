"""Prepare the MCP tests' own SQLite database (run in a subprocess: ``python -m tests.mcp.seed``).

Migrates, loads the default catalog, makes the local CA, makes the operators and prints their tokens as JSON.
"""

from __future__ import annotations

import json
import os

import django


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "powernode.settings")
    django.setup()
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group, Permission
    from django.core.management import call_command

    from apps.system.services import operator_token_create

    call_command("migrate", verbosity=0, interactive=False)
    call_command("loaddata", "default_catalog", verbosity=0)
    call_command("pki_init_local_ca", verbosity=0)  # the handshake's certificates (lab test)
    User = get_user_model()
    admin = User.objects.create_user("mcp-admin")
    admin.groups.add(Group.objects.get(name="Platform admins"))
    viewer = User.objects.create_user("mcp-viewer")
    view = Permission.objects.get(content_type__app_label="system", codename="instance_view")
    viewer.user_permissions.add(view)
    User.objects.create_user("mcp-revoked").groups.add(Group.objects.get(name="Platform admins"))
    tokens = {name: operator_token_create(username=f"mcp-{name}") for name in ("admin", "viewer", "revoked")}
    print(json.dumps(tokens))


if __name__ == "__main__":
    main()
