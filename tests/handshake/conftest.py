"""Handshake test fixtures: a local CA, the tutorial's fleet with docker-engine assigned, agent clients."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient

from apps.pki.adapters.local import init_local_ca
from tests.pki.helpers import make_csr

HEARTBEAT = "/api/v1/agent/heartbeat"
HANDSHAKE = "/api/v1/runtime/handshake"


class AgentClient:
    """Plays one agent over HTTP (Django's test client); every call returns (status, json)."""

    def __init__(self, token: str | None) -> None:
        self.client = APIClient()
        if token:
            self.client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")

    def post(self, path: str, body: Any = None, *, raw: str | bytes | None = None) -> tuple[int, dict]:
        data = raw if raw is not None else json.dumps(body if body is not None else {})
        response = self.client.post(path, data=data, content_type="application/json")
        return response.status_code, response.json()

    def heartbeat(self, **fields: Any) -> tuple[int, dict]:
        body = {"agent_version": "0.1.0", "runtimes": {"docker": {"phase": "none"}}, **fields}
        return self.post(HEARTBEAT, body)

    def handshake(self, phase: str, **fields: Any) -> tuple[int, dict]:
        return self.post(HANDSHAKE, {"runtime": "docker", "phase": phase, **fields})

    def ok(self, phase: str, **fields: Any) -> dict:
        status, body = self.handshake(phase, **fields)
        assert status == 200, (phase, status, body)
        return body

    def walk_to_ready(self, *, version: str = "20.10.24") -> dict[str, Any]:
        """installing → wants_cert → wants_config → ready; returns every answer by phase."""
        answers = {"installing": self.ok("installing")}
        answers["wants_cert"] = self.ok("wants_cert", csr_pem=make_csr())
        answers["wants_config"] = self.ok("wants_config")
        answers["ready"] = self.ok("ready", version=version)
        return answers


@pytest.fixture(scope="session")
def handshake_ca_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ca_dir = tmp_path_factory.mktemp("handshake-ca") / "pki"
    init_local_ca(ca_dir)
    return ca_dir


@pytest.fixture(autouse=True)
def local_ca(settings, handshake_ca_dir: Path) -> Iterator[Path]:  # noqa: ANN001 - pytest-django settings
    """Every handshake test signs with a real LocalCaAdapter (no Vault: KV writes are recorded as skipped)."""
    settings.VAULT_ADDR = ""
    settings.VAULT_TOKEN = ""
    settings.PKI_LOCAL_CA_DIR = handshake_ca_dir
    yield handshake_ca_dir


@pytest.fixture
def docker_fleet(api, fleet) -> dict[str, Any]:
    """The fleet with docker-engine assigned to its template, and the instance's agent."""
    api.ok(
        "system_assign_module_to_template",
        {"template_id": fleet["template"]["id"], "module_id": str(fleet["docker_module"].id)},
    )
    return {**fleet, "agent": AgentClient(fleet["agent_token"])}


@pytest.fixture
def agent(docker_fleet) -> AgentClient:
    return docker_fleet["agent"]


def state_counts() -> dict[str, int]:
    """Rows that any handshake or heartbeat could write: a refusal must leave every one unchanged."""
    from apps.docker_hosts.models import DockerHost
    from apps.events.models import Event
    from apps.pki.models import IssuedCertificate, VaultKvOutbox

    return {
        "hosts": DockerHost.objects.count(),
        "events": Event.objects.count(),
        "certificates": IssuedCertificate.objects.count(),
        "kv_outbox": VaultKvOutbox.objects.count(),
    }


def host_snapshot() -> list[tuple]:
    from apps.docker_hosts.models import DockerHost

    return list(
        DockerHost.objects.order_by("id").values_list("id", "status", "server_cert_serial", "version")
    )


def assert_error(status: int, body: dict, expected_status: int, expected_type: str) -> dict:
    """The platform's error shape with the expected status and type; returns the error object."""
    assert status == expected_status, (status, body)
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"type", "message", "details"}, error
    assert error["type"] == expected_type, error
    assert isinstance(error["message"], str) and error["message"], error
    assert isinstance(error["details"], dict), error
    return error


@pytest.fixture(scope="session")
def handshake_openbao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A real ``bao server -dev`` on loopback, bootstrapped with pki, pki_int and the node role."""
    from apps.pki.adapters.vault import bootstrap
    from apps.pki.openbao_dev import OpenBaoServer

    server = OpenBaoServer(tmp_path_factory.mktemp("handshake-openbao")).start()
    try:
        bootstrap(url=server.url, token=server.token)
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["local", pytest.param("vault", marks=pytest.mark.vault)])
def ca_backend(request: pytest.FixtureRequest, settings) -> str:  # noqa: ANN001 - pytest-django settings
    """Run a test once with the LocalCaAdapter and once against a real OpenBao; returns the adapter name."""
    if request.param == "local":
        return "LocalCaAdapter"
    server = request.getfixturevalue("handshake_openbao")
    settings.VAULT_ADDR = server.url
    settings.VAULT_TOKEN = server.token
    settings.VAULT_PKI_MOUNT = "pki_int"
    settings.VAULT_PKI_ROLE = "node"
    settings.VAULT_KV_MOUNT = "secret"
    settings.VAULT_TIMEOUT = 5.0
    return "VaultCaAdapter"
