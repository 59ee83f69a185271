"""Agent tokens: missing or wrong → 401; an agent acts for its own instance only; rotation and deletion."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from apps.docker_hosts.models import DockerHost
from apps.nodes.models import NodeInstance
from apps.nodes.services import instance_delete
from powernode.actors import Actor
from tests.agents import HANDSHAKE, HEARTBEAT, AgentClient
from tests.csr import make_csr
from tests.handshake.conftest import assert_error, state_counts

ENDPOINTS = [HEARTBEAT, HANDSHAKE]


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize(
    "header",
    [
        None,
        "Bearer",
        "Basic dXNlcjpwYXNz",
        "Bearer not-a-token",
        "Bearer pna_000000000000_wrongsecret",
        "Bearer pna_short_x",
    ],
)
def test_missing_or_wrong_token_is_401_and_changes_nothing(docker_fleet, path, header):
    before = state_counts()
    client = AgentClient(None)
    if header:
        client.client.credentials(HTTP_AUTHORIZATION=header)
    status, body = client.post(path, {"runtime": "docker", "phase": "installing", "agent_version": "1"})
    assert_error(status, body, 401, "NotAuthenticated")
    assert state_counts() == before
    assert NodeInstance.objects.get().last_heartbeat_at is None


def test_401_carries_www_authenticate(docker_fleet):
    response = AgentClient(None).client.post(HEARTBEAT, data="{}", content_type="application/json")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_right_prefix_wrong_secret_is_401(docker_fleet):
    token = docker_fleet["agent_token"]
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    status, body = AgentClient(forged).heartbeat()
    assert_error(status, body, 401, "NotAuthenticated")


@pytest.mark.parametrize("path", ENDPOINTS)
def test_operator_token_is_not_an_agent_token(api, docker_fleet, path):
    from apps.system.services import operator_token_create

    operator = operator_token_create(username="ops-admin")
    status, body = AgentClient(operator).post(path, {"runtime": "docker", "phase": "installing"})
    error = assert_error(status, body, 401, "NotAuthenticated")
    assert "pna_" in error["message"]


def test_agent_token_is_refused_by_operator_actions(docker_fleet):
    from tests.conftest import ActionClient

    status, body = ActionClient(docker_fleet["agent_token"]).call("docker_list_hosts")
    assert status == 401, body


def test_an_agent_cannot_touch_another_instances_host(api, docker_fleet, agent):
    """Agent B posting 'decommissioned' for A's host gets the same 404 as for a host that does not exist."""
    agent.walk_to_ready()
    host_a = DockerHost.objects.get()
    other = api.ok(
        "system_provision_instance", {"template_id": docker_fleet["template"]["id"], "name": "node-2"}
    )
    api.ok(
        "system_sdwan_attach_peer",
        {"network_id": docker_fleet["network"]["id"], "node_instance_id": other["instance"]["id"]},
    )
    agent_b = AgentClient(other["agent_token"])
    before = state_counts()
    status, body = agent_b.handshake("decommissioned", host_id=host_a.id)
    error_other = assert_error(status, body, 404, "NotFound")
    status, body = agent_b.handshake("decommissioned", host_id="host-00000000-0000-7000-8000-000000000000")
    error_unknown = assert_error(status, body, 404, "NotFound")
    assert error_other["message"].replace(host_a.id, "X") == error_unknown["message"].replace(
        "host-00000000-0000-7000-8000-000000000000", "X"
    )
    assert state_counts() == before
    assert DockerHost.objects.get(pk=host_a.id).status == DockerHost.Status.CONNECTED
    # B's own handshake makes B's own host; A's is untouched
    agent_b.ok("installing")
    host_b = agent_b.ok("wants_cert", csr_pem=make_csr())["host_id"]
    assert host_b != host_a.id
    assert str(DockerHost.objects.get(pk=host_b).node_instance_id) == other["instance"]["id"]
    # B's heartbeat answers B's state only
    status, answer = agent_b.heartbeat()
    assert answer["instance_id"] == other["instance"]["id"]
    b_not_after = DockerHost.objects.get(pk=host_b).server_cert_not_after.isoformat()
    assert answer["runtime_orders"] == [
        {"runtime": "docker", "action": "provision", "host_id": host_b, "cert_not_after": b_not_after}
    ]


def test_rotated_token_stops_at_once(docker_fleet, agent, capsys):
    assert agent.heartbeat()[0] == 200
    call_command("rotate_agent_token", "node-1")
    new_token = capsys.readouterr().out.strip()
    assert new_token.startswith("pna_") and new_token != docker_fleet["agent_token"]
    assert_error(*agent.heartbeat(), 401, "NotAuthenticated")
    assert AgentClient(new_token).heartbeat()[0] == 200


def test_rotate_agent_token_refuses_unknown_instance(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="No live node instance"):
        call_command("rotate_agent_token", "no-such-node")


def test_deleted_instance_token_is_revoked(docker_fleet, agent, admin_actor):
    assert agent.heartbeat()[0] == 200
    instance_delete(instance_id=docker_fleet["instance"]["id"], actor=admin_actor)
    for path in ENDPOINTS:
        status, body = agent.post(path, {"runtime": "docker", "phase": "installing", "agent_version": "1"})
        assert_error(status, body, 401, "NotAuthenticated")
    instance = NodeInstance.objects.get()
    assert instance.status == NodeInstance.Status.DELETED and instance.agent_token_hash == ""


def test_instance_delete_twice_is_not_found(docker_fleet):
    from powernode.errors import NotFound

    instance_delete(instance_id=docker_fleet["instance"]["id"], actor=Actor.system())
    with pytest.raises(NotFound):
        instance_delete(instance_id=docker_fleet["instance"]["id"], actor=Actor.system())
