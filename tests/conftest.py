"""The root fixtures: operators and API clients, a catalog, the tutorial's fleet, its agent, one CA of each kind.

Every test signs with one local CA made once per run (``local_ca``, autouse: no test reads the checkout's
var/pki or a VAULT_ADDR from the environment); ``openbao`` is one bootstrapped ``bao server -dev`` per run,
started only when a test asks for it. Rows come from tests/factories.py, CSRs from tests/csr.py and the
stand-in agent from tests/agents.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from rest_framework.test import APIClient

from apps.pki.adapters.local import init_local_ca
from apps.system.services import operator_token_create
from powernode.actors import Actor
from tests.agents import AgentClient
from tests.csr import make_csr
from tests.factories import report_hub_key
from tests.openbao import OpenBaoServer, bootstrapped_openbao, point_settings_at


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
    """The tutorial's starting point: a template, an instance on an SDWAN network (peer attached) whose hub
    has reported its key."""
    template = api.ok("system_create_node_template", {"name": "docker-nodes"})["template"]
    provisioned = api.ok("system_provision_instance", {"template_id": template["id"], "name": "node-1"})
    network = api.ok("system_sdwan_create_network", {"name": "net-a", "prefix": "fd00:abcd:1::/64"})["network"]
    network["hub_public_key"] = report_hub_key(network["id"])  # its hub has synced once
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


@pytest.fixture
def docker_fleet(api, fleet) -> dict[str, Any]:
    """The fleet with docker-engine assigned to its template, and the instance's agent (in process)."""
    api.ok(
        "system_assign_module_to_template",
        {"template_id": fleet["template"]["id"], "module_id": str(fleet["docker_module"].id)},
    )
    return {**fleet, "agent": AgentClient(fleet["agent_token"])}


@pytest.fixture
def agent(docker_fleet) -> AgentClient:
    return docker_fleet["agent"]


@pytest.fixture
def pending_host(docker_fleet) -> dict[str, Any]:
    """The docker fleet with a host whose certificates were signed (wants_cert); it waits for wants_config."""
    agent = docker_fleet["agent"]
    agent.ok("installing")
    host_id = agent.ok("wants_cert", csr_pem=make_csr())["host_id"]
    return {**docker_fleet, "host_id": host_id}


# -- the CAs ------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def local_ca_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One local CA for the whole run."""
    ca_dir = tmp_path_factory.mktemp("local-ca") / "pki"
    init_local_ca(ca_dir)
    return ca_dir


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    """The failed-authentication throttle counts in the cache: every test starts with none."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(autouse=True)
def local_ca(settings, local_ca_dir: Path) -> Path:  # noqa: ANN001 - pytest-django settings
    """Services sign with a real LocalCaAdapter and no Vault (KV writes are recorded as skipped)."""
    settings.VAULT_ADDR = ""
    settings.VAULT_TOKEN = ""
    settings.PKI_LOCAL_CA_DIR = local_ca_dir
    return local_ca_dir


@pytest.fixture(scope="session")
def openbao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenBaoServer]:
    """One ``bao server -dev`` per run on a free loopback port, bootstrapped with pki, pki_int and the node roles."""
    with bootstrapped_openbao(tmp_path_factory.mktemp("openbao-dev")) as server:
        yield server


@pytest.fixture(params=["local", pytest.param("vault", marks=pytest.mark.vault)])
def ca_backend(request: pytest.FixtureRequest, settings) -> str:  # noqa: ANN001 - pytest-django settings
    """Run a test once with the local CA and once against the run's OpenBao; returns the adapter name."""
    if request.param == "local":
        return "LocalCaAdapter"
    point_settings_at(settings, request.getfixturevalue("openbao"))
    return "VaultCaAdapter"
