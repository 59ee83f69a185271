"""Shared fixtures: operators with and without permissions, API clients, a catalog, builders."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from rest_framework.test import APIClient

from apps.system.services import operator_token_create
from powernode.actors import Actor


@pytest.fixture
def catalog(db) -> dict[str, Any]:
    """The default catalog fixture, by module name."""
    from apps.modules.models import Module

    call_command("loaddata", "default_catalog", verbosity=0)
    return {m.name: m for m in Module.objects.all()}


@pytest.fixture
def admin_user(db, django_user_model):
    user = django_user_model.objects.create_user("ops-admin", password="pw-ops-admin")
    user.groups.add(Group.objects.get(name="Platform admins"))
    return user


@pytest.fixture
def admin_actor(admin_user) -> Actor:
    return Actor.for_user(admin_user)


@pytest.fixture
def make_operator(db, django_user_model) -> Callable[..., Any]:
    """make_operator("viewer", perms=["instance_view"]) → a user with exactly those system permissions."""

    def make(username: str, *, perms: list[str] = ()):  # noqa: ANN202
        user = django_user_model.objects.create_user(username, password=f"pw-{username}")
        for codename in perms:
            user.user_permissions.add(Permission.objects.get(content_type__app_label="system", codename=codename))
        return user

    return make


class ActionClient:
    """POSTs actions over HTTP as one operator and returns (status, json)."""

    def __init__(self, token: str | None) -> None:
        self.client = APIClient()
        if token:
            self.client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")

    def call(self, name: str, payload: Any = None, *, raw: str | bytes | None = None) -> tuple[int, dict]:
        body = raw if raw is not None else json.dumps(payload if payload is not None else {})
        response = self.client.post(f"/api/v1/actions/{name}", data=body, content_type="application/json")
        return response.status_code, response.json()

    def ok(self, name: str, payload: Any = None) -> dict:
        status, body = self.call(name, payload)
        assert status == 200, (name, status, body)
        return body


@pytest.fixture
def api(admin_user) -> ActionClient:
    """Actions as a Platform admin, over HTTP with a Bearer token."""
    return ActionClient(operator_token_create(username=admin_user.username))


@pytest.fixture
def api_as(make_operator) -> Callable[..., ActionClient]:
    def make(username: str, *, perms: list[str] = ()) -> ActionClient:
        user = make_operator(username, perms=perms)
        return ActionClient(operator_token_create(username=user.username))

    return make


@pytest.fixture
def fleet(api, catalog) -> dict[str, Any]:
    """The tutorial's starting point: a template, an instance on an SDWAN network (peer attached)."""
    template = api.ok("system_create_node_template", {"name": "docker-nodes"})["template"]
    provisioned = api.ok("system_provision_instance", {"template_id": template["id"], "name": "node-1"})
    network = api.ok("system_sdwan_create_network", {"name": "net-a", "prefix": "fd00:abcd:1::/64"})["network"]
    peer = api.ok(
        "system_sdwan_attach_peer", {"network_id": network["id"], "node_instance_id": provisioned["instance"]["id"]}
    )["peer"]
    return {
        "template": template,
        "instance": provisioned["instance"],
        "agent_token": provisioned["agent_token"],
        "network": network,
        "peer": peer,
        "docker_module": catalog["docker-engine"],
    }
