"""The powernode-agent package's own client and handshake walker against the real platform over HTTP.

The agent's platform client, state store, TLS and daemon.json handling and its daemon.json policy check
are the real ones; only the dockerd process is stood in for (the lab runs a real one). This pins the
protocol between the two sides: what one sends, the other accepts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from apps.docker_hosts.kinds import DECOMMISSION_SEQUENCE, PROVISIONING_SEQUENCE, WANTS_CERT
from apps.docker_hosts.models import DockerHost
from apps.docker_hosts.smoke import in_process_server
from apps.events.models import Event
from apps.pki.models import IssuedCertificate

pytest.importorskip("powernode_agent", reason="the agent package (pip install -e agent) is not installed")

from powernode_agent.config import AgentConfig  # noqa: E402
from powernode_agent.docker_runtime import DockerRuntime  # noqa: E402
from powernode_agent.handshake import HandshakeWalker, decommission, runtime_report  # noqa: E402
from powernode_agent.platform_api import PlatformClient  # noqa: E402
from powernode_agent.state import StateStore  # noqa: E402

pytestmark = pytest.mark.django_db(transaction=True)


class DockerdStandIn(DockerRuntime):
    """The agent's runtime with the process side replaced: no dockerd is started."""

    running = False

    def dockerd_path(self) -> str | None:
        return "/usr/sbin/dockerd-stand-in"

    def engine_version(self) -> str:
        return "20.10.24+dfsg1"

    def start(self) -> None:
        self.running = True

    def stop(self, *, timeout_s: float = 30.0) -> None:
        self.running = False

    def is_running(self) -> bool:
        return self.running

    def wait_ready(self, address: str, chain_pem: str, *, timeout_s: float | None = None) -> str:
        assert self.running
        return self.engine_version()


@pytest.fixture
def node(tmp_path: Path, docker_fleet: dict[str, Any]) -> Any:
    with in_process_server() as url:
        config = AgentConfig(
            platform_url=url,
            agent_token=docker_fleet["agent_token"],
            state_dir=tmp_path / "state",
            docker_tls_dir=tmp_path / "tls",
            daemon_json_path=tmp_path / "daemon.json",
        )
        store = StateStore(config.state_dir)
        store.ensure()
        runtime = DockerdStandIn(config, store)
        client = PlatformClient(url, docker_fleet["agent_token"], timeout_s=10)
        yield {"config": config, "store": store, "runtime": runtime, "client": client, **docker_fleet}


def test_the_agent_walks_the_handshake_and_decommissions(api, node):
    client, store, runtime = node["client"], node["store"], node["runtime"]
    overlay = node["peer"]["overlay_address"]
    answer = client.heartbeat(runtimes={"docker": runtime_report(store)})
    assert answer["runtime_orders"] == [{"runtime": "docker", "action": "provision", "host_id": None}]

    walker = HandshakeWalker(
        client, runtime, store, instance_id=answer["instance_id"], overlay_addresses=[overlay]
    )
    version = walker.walk()  # the agent's own daemon.json policy check runs on what the platform sent
    host = DockerHost.objects.get()
    assert (host.status, host.version, version) == ("connected", "20.10.24+dfsg1", "20.10.24+dfsg1")
    written = json.loads(Path(node["config"].daemon_json_path).read_text())
    assert written["hosts"] == [f"tcp://[{overlay}]:2376"] and written["tlsverify"] is True
    assert runtime_report(store) == {"phase": "ready", "version": "20.10.24+dfsg1"}
    # the heartbeat report the agent sends is accepted and recorded as is
    client.heartbeat(runtimes={"docker": runtime_report(store)})
    assert host.node_instance.__class__.objects.get().runtime_report == {
        "docker": {"phase": "ready", "version": "20.10.24+dfsg1"}
    }

    api.ok("system_decommission_docker_runtime", {"host_id": host.id})
    order = client.heartbeat(runtimes={"docker": runtime_report(store)})["runtime_orders"]
    assert order == [{"runtime": "docker", "action": "decommission", "host_id": host.id}]
    decommission(client, runtime, store, host_id=order[0]["host_id"])
    host.refresh_from_db()
    assert host.status == DockerHost.Status.DECOMMISSIONED
    assert not IssuedCertificate.objects.filter(host_id=host.id, revoked_at__isnull=True).exists()
    # a repeated confirmation (the agent retrying) is the 409 the agent treats as done
    decommission(client, runtime, store, host_id=host.id)
    assert client.heartbeat(runtimes={"docker": runtime_report(store)})["runtime_orders"] == []
    kinds = list(
        Event.objects.filter(host_id=host.id, kind__startswith="system.docker.")
        .order_by("occurred_at", "id")
        .values_list("kind", flat=True)
    )
    # the host exists from wants_cert on: its events are the sequences from there (DESIGN §3)
    from_wants_cert = PROVISIONING_SEQUENCE[PROVISIONING_SEQUENCE.index(WANTS_CERT) :]
    assert kinds == [*from_wants_cert, *DECOMMISSION_SEQUENCE]
