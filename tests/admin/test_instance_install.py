"""The instance page's "Install the agent" panel: the enrollment command (no token in it) and the wheel's
sha256, which is the sha256 of what the wheel URL serves."""

from __future__ import annotations

import hashlib
import html
import re

from django.contrib.auth.models import Permission
from django.test import Client


def instance_page(client: Client, instance_id: str) -> str:
    response = client.get(f"/admin/nodes/nodeinstance/{instance_id}/change/")
    assert response.status_code == 200
    return response.content.decode()


def panel_field(page: str, element_id: str) -> str:
    found = re.search(rf'id="{element_id}"[^>]*>([^<]*)<', page)
    assert found, f"no #{element_id} on the page"
    return html.unescape(found.group(1))


def test_the_page_shows_the_command_and_the_sha256_of_the_served_wheel(root_client, fleet, settings):
    settings.POWERNODE_PUBLIC_URL = "https://platform.example.net"
    page = instance_page(root_client, fleet["instance"]["id"])
    command = panel_field(page, "pn-install-command")
    assert command == (
        "curl -fsSLg https://platform.example.net/agent/install.sh | sh -s -- --url https://platform.example.net"
    )
    assert fleet["agent_token"] not in page
    link = re.search(r'href="https://platform\.example\.net(/agent/[^"]+\.whl)" id="pn-wheel-link"', page)
    assert link, page
    served = Client().get(link.group(1))  # anonymous: the wheel holds no secret
    assert served.status_code == 200
    assert panel_field(page, "pn-wheel-sha256") == hashlib.sha256(served.content).hexdigest()


def test_without_a_public_url_the_command_names_the_address_the_browser_used(root_client, fleet, settings):
    settings.POWERNODE_PUBLIC_URL = ""
    command = panel_field(instance_page(root_client, fleet["instance"]["id"]), "pn-install-command")
    assert command == (
        "curl -fsSLg http://testserver/agent/install.sh | sh -s -- --url http://testserver --insecure-http"
    )


def test_no_panel_without_instance_view(db, django_user_model, fleet):
    user = django_user_model.objects.create_user("looker", password="pw-looker", is_staff=True)
    user.user_permissions.add(Permission.objects.get(content_type__app_label="nodes", codename="view_nodeinstance"))
    client = Client()
    client.force_login(user)
    assert 'id="pn-agent-install"' not in instance_page(client, fleet["instance"]["id"])


def test_a_public_url_the_action_refuses_is_said_on_the_page(root_client, fleet, settings):
    settings.POWERNODE_PUBLIC_URL = "https://platform.example.net/powernode"
    page = instance_page(root_client, fleet["instance"]["id"])
    assert "ValidationError" in panel_field(page, "pn-install-error")
    assert 'id="pn-install-command"' not in page
