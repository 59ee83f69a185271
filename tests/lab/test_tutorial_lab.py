"""Tutorial 03 end to end, for real: platform server, SDWAN hub, agent, dockerd, workstation, intruder.

One lab for the module (``lab.tutorial.Tutorial``, ~20 s to build); the tests run in file order and each
walks the next part of the tutorial, so a later test relies on the earlier ones having passed. The agent's
dockerd waits behind a gate file on the first start, which holds the handshake between ``wants_config``
and ``ready`` long enough to kill the agent there, deterministically.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from apps.docker_hosts import kinds as docker_kinds
from lab.netns import in_netns
from lab.pki import LabCa
from lab.tutorial import (
    CONTAINER_NAME,
    DOCKER_PORT,
    INTRUDER,
    NODE,
    PUBLISHED_PORT,
    WORKSTATION,
    Tutorial,
    first_occurrences,
)
from tests.lab.conftest import fresh_prefix

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def tutorial(lab_possible: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tutorial]:
    gate = tmp_path_factory.mktemp("dockerd-gate") / "open"
    walk = Tutorial(fresh_prefix(), dockerd_gate=gate, agent_from_platform=True, out=lambda line: None)
    try:
        walk.build()
        yield walk
    finally:
        left = walk.close()
    assert left == {}, f"the tutorial lab left things behind: {left}"


def kinds(events: list[dict[str, Any]]) -> list[str]:
    return [e["kind"] for e in events]


def test_the_node_runs_the_agent_its_enrollment_command_installed_from_the_platform(tutorial: Tutorial) -> None:
    shown = tutorial.platform.action("system_agent_install_command", {"id": tutorial.instance_id})
    wheel = shown["wheel"]
    # what the node downloads over the lab network is what the platform's answer pins
    copy = tutorial.node_dir / "fetched.whl"
    assert tutorial.lab.ns(NODE).run("curl", "-fsSg", "-o", str(copy), wheel["url"]).returncode == 0
    assert hashlib.sha256(copy.read_bytes()).hexdigest() == wheel["sha256"]
    assert tutorial.install_command.startswith(shown["command"].split(" | ")[0])

    # the running agent is the installed copy, started with the agent.env the command wrote
    installed = str(tutorial.installed_agent / "bin")
    agents = [pid for pid in tutorial.lab.ns(NODE).pids() if installed in _cmdline(pid)]
    assert agents, "no process of the node runs the agent installed from the platform"
    environ = _environ(agents[0])
    assert environ.get("PYTHONPATH", "") == "" and "POWERNODE_AGENT_TOKEN" not in environ
    assert environ["POWERNODE_AGENT_TOKEN_FILE"] == str(tutorial.installed_config / "token")
    assert tutorial.platform.action("system_get_instance", {"id": tutorial.instance_id})["instance"]["status"] == (
        "online"
    )

    # every request line of the platform's access log: the downloads and the heartbeats, never the token
    log = (tutorial.lab.dir / "logs" / "server.log").read_text(errors="replace")
    assert "GET /agent/install.sh" in log and f"GET /agent/{wheel['filename']}" in log
    assert "POST /api/v1/agent/heartbeat" in log
    assert tutorial.agent_token not in log and "pna_" not in log


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode(errors="replace").split("=", 1) for item in raw if b"=" in item)


def test_handshake_in_the_tutorials_order_and_survives_an_agent_killed_mid_handshake(
    tutorial: Tutorial,
) -> None:
    assignment = tutorial.assign()["assignment"]
    assert assignment["module_id"] == tutorial.module_id

    # dockerd is held at the gate: the handshake stops after wants_config, with the host still pending.
    tutorial.watch_events(until=docker_kinds.WANTS_CONFIG)
    assert tutorial.host()["status"] == "pending"
    tutorial.kill_agent()
    tutorial.start_agent()
    assert tutorial.dockerd_gate is not None
    tutorial.dockerd_gate.touch()

    events = tutorial.watch_events(until=docker_kinds.PROVISIONED)
    assert first_occurrences(kinds(events)) == docker_kinds.PROVISIONING_SEQUENCE
    assert docker_kinds.FAILED not in kinds(events)
    host = tutorial.connected()
    assert host["status"] == "connected"
    assert host["api_endpoint"] == f"tcp://[{tutorial.node_overlay}]:{DOCKER_PORT}"
    assert host["version"] and host["version"][0].isdigit()  # the engine version the agent read from dockerd
    # One dockerd: the restarted agent adopted the one its predecessor started instead of starting another.
    assert len(tutorial.dockerd_pids()) == 1


def test_dockerd_listens_only_on_the_overlay_address_port_2376(tutorial: Tutorial) -> None:
    listeners = tutorial.lab.ns(NODE).listening_tcp()
    dockerd = [(address, port) for address, port, process in listeners if process == "dockerd"]
    assert dockerd == [(tutorial.node_overlay, DOCKER_PORT)]
    on_2376 = [(address, process) for address, port, process in listeners if port == DOCKER_PORT]
    assert on_2376 == [(tutorial.node_overlay, "dockerd")]
    # No unix socket either: daemon.json's hosts is the overlay listener alone.
    config = json.loads((tutorial.node_dir / "daemon.json").read_text())
    assert config["hosts"] == [f"tcp://[{tutorial.node_overlay}]:{DOCKER_PORT}"]
    assert config["tlsverify"] is True and config["bip"].startswith("198.18.")


def test_dockerd_refuses_a_client_without_a_certificate_or_with_another_cas(tutorial: Tutorial) -> None:
    certs = tutorial.cert_dirs[WORKSTATION]
    ca_pem = (certs / "operator-ca.pem").read_text()
    url = f"https://[{tutorial.node_overlay}]:{DOCKER_PORT}/version"

    with_operator_cert = tutorial.lab.curl(
        WORKSTATION,
        url,
        ca_pem=ca_pem,
        cert_pem=(certs / "operator-cert.pem").read_text(),
        key_pem=(certs / "operator-key.pem").read_text(),
    )
    assert with_operator_cert.returncode == 0, with_operator_cert.stderr
    assert "ApiVersion" in with_operator_cert.stdout

    without_cert = tutorial.lab.curl(WORKSTATION, url, ca_pem=ca_pem)
    assert without_cert.returncode != 0
    assert "ApiVersion" not in without_cert.stdout

    foreign = LabCa("someone else's CA").issue_client("operator:admin")
    other_ca = tutorial.lab.curl(
        WORKSTATION, url, ca_pem=ca_pem, cert_pem=foreign.cert_pem, key_pem=foreign.key_pem
    )
    assert other_ca.returncode != 0
    assert "ApiVersion" not in other_ca.stdout


def test_pull_create_and_list_a_container_through_the_actions(tutorial: Tutorial) -> None:
    image = tutorial.pull()
    assert tutorial.image_ref in image["repo_tags"]
    assert image["id"].startswith("sha256:")

    container = tutorial.create_container()
    assert container["name"] == CONTAINER_NAME
    assert container["status"] == "running"

    listed = {c["name"]: c for c in tutorial.list_containers()}
    assert CONTAINER_NAME in listed
    assert listed[CONTAINER_NAME]["image"] == tutorial.image_ref
    assert listed[CONTAINER_NAME]["status"].startswith("Up")
    assert listed[CONTAINER_NAME]["ports"] == [{"host": PUBLISHED_PORT, "container": 80, "protocol": "tcp"}]
    # Published on the overlay /128 only, like the daemon: nothing of the node listens anywhere else.
    listeners = tutorial.lab.ns(NODE).listening_tcp()
    assert sorted(listeners) == sorted(
        [
            (tutorial.node_overlay, DOCKER_PORT, "dockerd"),
            (tutorial.node_overlay, PUBLISHED_PORT, "docker-proxy"),
        ]
    )


def test_the_workstation_reaches_the_container_and_the_daemon_over_the_overlay(tutorial: Tutorial) -> None:
    answer = tutorial.curl_container(WORKSTATION)
    assert answer.returncode == 0, answer.stderr
    assert "hello from the powernode lab" in answer.stdout

    ps = tutorial.docker_cli(WORKSTATION, "ps", "--format", "{{.Names}} {{.Ports}}")
    assert ps.returncode == 0, ps.stderr
    assert CONTAINER_NAME in ps.stdout
    assert f"[{tutorial.node_overlay}]:{PUBLISHED_PORT}->80/tcp" in ps.stdout


def test_an_intruder_on_network_b_with_a_valid_operator_cert_reaches_neither_port(tutorial: Tutorial) -> None:
    # Its certificate is as good as the workstation's: only the network keeps it out.
    assert (tutorial.cert_dirs[INTRUDER] / "operator-cert.pem").exists()
    dropped_before = tutorial.lab.hub.dropped_packets()
    web, cli = tutorial.intruder_attempts(timeout=3)
    assert web.returncode != 0 and "hello" not in web.stdout
    assert cli.returncode != 0 and CONTAINER_NAME not in cli.stdout
    # Its packets reached the hub through its own tunnel and died in the hub's forward chain.
    assert tutorial.lab.hub.dropped_packets() > dropped_before


def test_docker_list_containers_through_mcp(tutorial: Tutorial) -> None:
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    async def call() -> Any:
        headers = {"Authorization": f"Bearer {tutorial.platform.token}"}
        async with httpx2.AsyncClient(headers=headers, timeout=60, trust_env=False) as http:
            transport = streamable_http_client(f"{tutorial.platform.url}/mcp", http_client=http)
            async with Client(transport, cache=None) as client:
                return await client.call_tool("docker_list_containers", {"host_id": tutorial.host_id})

    # The MCP client's sockets are opened from the platform's namespace, where the server listens.
    with in_netns(tutorial.lab.platform.name):
        result = anyio.run(call)
    assert not result.is_error, result.content
    containers = json.loads(result.content[0].text)["containers"]
    assert [c["name"] for c in containers] == [CONTAINER_NAME]
    # the same answer as REST, but for docker's "Up N seconds", which may tick between the two calls
    def steady(listed: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{**c, "status": c["status"].split(" ", 1)[0]} for c in listed]

    assert steady(containers) == steady(tutorial.list_containers())
    assert containers[0]["status"].startswith("Up ")



def test_day_2_logs_lifecycle_restart_policy_and_refusals(tutorial: Tutorial) -> None:
    """The tutorial's "Day 2" section: images, inspect, logs, stop/start/restart, refused options."""
    from lab.platform import ApiError

    action, host_id = tutorial.platform.action, tutorial.host_id
    images = action("docker_list_images", {"host_id": host_id})["images"]
    assert tutorial.image_ref in {tag for image in images for tag in image["repo_tags"]}
    web = action("docker_inspect_container", {"host_id": host_id, "container_id": CONTAINER_NAME})["container"]
    assert web["state"]["running"] is True and web["restart_policy"]["name"] == "no"
    assert web["ports"] == [{"host": PUBLISHED_PORT, "container": 80, "protocol": "tcp"}]

    def names() -> set[str]:
        return {c["name"] for c in action("docker_list_containers", {"host_id": host_id, "all": True})["containers"]}

    before = names()
    for option, value in [("privileged", True), ("binds", ["/:/host"]), ("network_mode", "host"),
                          ("cap_add", ["SYS_ADMIN"]), ("devices", ["/dev/sda"]), ("pid_mode", "host")]:
        with pytest.raises(ApiError) as err:
            action("docker_create_container", {"host_id": host_id, "image": tutorial.image_ref, "name": "evil",
                                               option: value})
        assert err.value.status == 400 and "refused" in str(err.value), err.value.body
    assert names() == before  # nothing was created on the daemon

    script = "for i in 1 2 3; do echo day2-line-$i; done; sleep 3600"
    created = action("docker_create_container", {
        "host_id": host_id, "image": tutorial.image_ref, "name": "day2", "command": ["/bin/sh", "-c", script],
        "restart_policy": "unless-stopped", "labels": {"tutorial": "day2"},
        "volumes": [{"name": "day2-data", "container_path": "/data"}],
    })["container"]
    assert created["status"] == "running"
    for _ in range(50):
        logs = action("docker_container_logs", {"host_id": host_id, "container_id": "day2"})
        if "day2-line-3" in logs["logs"]:
            break
    assert logs == {"logs": "day2-line-1\nday2-line-2\nday2-line-3\n", "truncated": False}
    assert action("docker_container_logs", {"host_id": host_id, "container_id": "day2", "tail": 1})["logs"] == (
        "day2-line-3\n"
    )
    stop = {"host_id": host_id, "container_id": "day2", "timeout_s": 1}
    assert action("docker_stop_container", stop)["container"]["status"] == "exited"
    assert action("docker_start_container", {"host_id": host_id, "container_id": "day2"})["container"]["status"] == (
        "running"
    )
    assert action("docker_restart_container", stop)["container"] == {"id": created["id"], "name": "day2",
                                                                     "status": "running"}
    info = action("docker_inspect_container", {"host_id": host_id, "container_id": "day2"})["container"]
    assert info["restart_policy"]["name"] == "unless-stopped" and info["labels"] == {"tutorial": "day2"}
    assert info["volumes"] == [{"name": "day2-data", "container_path": "/data", "read_only": False}]
    recorded = kinds(tutorial.docker_events())
    for kind in ("system.docker.container.stopped", "system.docker.container.started",
                 "system.docker.container.restarted"):
        assert kind in recorded
    assert tutorial.host()["api_version"] == "1.41"  # negotiated with the node's 20.10, shown on the host
    action("docker_delete_container", {"host_id": host_id, "container_id": "day2", "force": True})
    assert names() == before

def test_delete_the_container_and_the_image(tutorial: Tutorial) -> None:
    tutorial.delete_container()
    assert CONTAINER_NAME not in [c["name"] for c in tutorial.list_containers()]
    tutorial.delete_image()
    images = tutorial.docker_cli(WORKSTATION, "images", "--format", "{{.Repository}}:{{.Tag}}")
    assert images.returncode == 0, images.stderr
    assert tutorial.image_ref not in images.stdout


def test_decommission_stops_dockerd_and_revokes_the_hosts_certificates(tutorial: Tutorial) -> None:
    answer = tutorial.decommission()
    assert answer["host"]["status"] == "decommissioning"
    assert tutorial.host()["status"] == "decommissioned"

    assert tutorial.dockerd_pids() == []
    assert not [entry for entry in tutorial.lab.ns(NODE).listening_tcp() if entry[1] == DOCKER_PORT]
    # The agent removed the daemon's key, certificate and daemon.json.
    assert not (tutorial.node_dir / "daemon.json").exists()
    assert list((tutorial.node_dir / "tls").glob("*.pem")) == []

    certificates = tutorial.host_certificates()
    assert {c["kind"] for c in certificates} >= {"server", "platform_client"}
    assert all(c["revoked_at"] for c in certificates), certificates
    assert {c["serial"] for c in certificates} <= tutorial.crl_serials()
    assert "system.docker.decommissioned" in kinds(tutorial.docker_events())


def test_unassign_the_module(tutorial: Tutorial) -> None:
    answer = tutorial.unassign()
    assert answer
    assert "system.docker.module.unassigned" in kinds(tutorial.docker_events())
    # The node got no new order: its host stays decommissioned and no dockerd came back.
    assert tutorial.host()["status"] == "decommissioned"
    assert tutorial.dockerd_pids() == []


def test_the_workstation_config_came_from_an_access_grant(tutorial: Tutorial) -> None:
    # The spokes were configured from the platform's grants: the hub knows exactly the peers the platform has.
    peers = tutorial.platform.action("system_sdwan_list_peers", {"network_id": tutorial.network_ids["lab-a"]})
    expected = {
        p["public_key"]: p["overlay_address"]
        for p in peers["peers"]
        if p["public_key"] and p["kind"] != "platform"
    }
    assert tutorial.lab.hub.refresh()["lab-a"].peers == expected
    assert len(expected) == 2  # the node and the workstation
    assert Path(tutorial.lab.dir / "spokes").exists()
