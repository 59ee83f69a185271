"""POST /api/v1/agent/heartbeat: what it records, what it answers, what it refuses."""

from __future__ import annotations

import base64
import datetime as dt

import pytest

from apps.events.models import Event
from apps.nodes.models import NodeInstance
from apps.sdwan.models import SdwanPeer
from tests.agents import HEARTBEAT, AgentClient
from tests.handshake.conftest import assert_error, state_counts

WG_KEY = base64.b64encode(bytes(range(32))).decode()


def test_first_heartbeat_records_and_brings_the_instance_online(docker_fleet, agent):
    status, _ = agent.heartbeat(agent_version="0.2.0", runtimes={"docker": {"phase": "installing"}})
    assert status == 200
    instance = NodeInstance.objects.get()
    assert instance.status == NodeInstance.Status.ONLINE
    assert instance.agent_version == "0.2.0"
    assert instance.runtime_report == {"docker": {"phase": "installing"}}
    first_seen = instance.last_heartbeat_at
    assert first_seen is not None
    assert Event.objects.filter(kind="system.instance.online").count() == 1

    events_before = Event.objects.count()
    agent.heartbeat(agent_version="0.2.0", runtimes={"docker": {"phase": "ready", "version": "20.10.24"}})
    instance.refresh_from_db()
    assert instance.last_heartbeat_at > first_seen
    assert instance.runtime_report == {"docker": {"phase": "ready", "version": "20.10.24"}}
    assert Event.objects.count() == events_before  # no event per heartbeat


def test_liveness_is_written_at_most_every_third_of_an_interval_unless_something_changed(
    settings, docker_fleet, agent
):
    settings.POWERNODE_HEARTBEAT_INTERVAL_S = 60
    report = {"docker": {"phase": "installing"}}
    agent.heartbeat(agent_version="0.2.0", runtimes=report)
    first = NodeInstance.objects.get().last_heartbeat_at
    agent.heartbeat(agent_version="0.2.0", runtimes=report)  # nothing new, 20 s not passed: no write
    assert NodeInstance.objects.get().last_heartbeat_at == first
    agent.heartbeat(agent_version="0.2.0", runtimes={"docker": {"phase": "ready", "version": "20.10.24"}})
    changed = NodeInstance.objects.get()
    assert changed.last_heartbeat_at > first and changed.runtime_report["docker"]["phase"] == "ready"
    NodeInstance.objects.update(last_heartbeat_at=first - dt.timedelta(seconds=21))  # a third of 60 s ago
    agent.heartbeat(agent_version="0.2.0", runtimes={"docker": {"phase": "ready", "version": "20.10.24"}})
    assert NodeInstance.objects.get().last_heartbeat_at > first


def test_answer_is_the_desired_state(settings, docker_fleet, agent):
    settings.POWERNODE_HEARTBEAT_INTERVAL_S = 17
    status, answer = agent.heartbeat()
    assert status == 200
    network, peer = docker_fleet["network"], docker_fleet["peer"]
    assert isinstance(answer.pop("desired_version"), str)  # tests/handshake/test_watch.py
    assert answer == {
        "instance_id": docker_fleet["instance"]["id"],
        "sdwan": [
            {
                "network_id": network["id"],
                "network_name": "net-a",
                "peer_id": peer["id"],
                "prefix": "fd00:abcd:1::/64",
                "overlay_address": peer["overlay_address"],
                "hub": {
                    "public_key": network["hub_public_key"],
                    "endpoint": network["hub_endpoint"] or None,
                    "overlay_address": "fd00:abcd:1::1",
                },
            }
        ],
        "assignments": [
            {"module_id": str(docker_fleet["docker_module"].id), "name": "docker-engine", "runtime": "docker"}
        ],
        "runtime_orders": [{"runtime": "docker", "action": "provision", "host_id": None}],
        "heartbeat_interval_s": 17,
    }


def test_no_orders_without_an_assignment(fleet):
    status, answer = AgentClient(fleet["agent_token"]).heartbeat()
    assert status == 200
    assert answer["assignments"] == [] and answer["runtime_orders"] == []


def test_provision_order_names_the_host_once_it_exists(docker_fleet, agent):
    agent.walk_to_ready()
    host_id = agent.heartbeat()[1]["runtime_orders"][0]["host_id"]
    assert host_id.startswith("host-")


def test_wireguard_key_is_recorded_on_the_instance_and_its_peers(docker_fleet, agent):
    status, _ = agent.heartbeat(wireguard_public_key=WG_KEY)
    assert status == 200
    assert NodeInstance.objects.get().wireguard_public_key == WG_KEY
    assert SdwanPeer.objects.get(node_instance__isnull=False).public_key == WG_KEY
    assert Event.objects.filter(kind="system.sdwan.peer.key_reported").count() == 1
    agent.heartbeat(wireguard_public_key=WG_KEY)  # same key again: nothing more
    assert Event.objects.filter(kind="system.sdwan.peer.key_reported").count() == 1


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "agent_version"),
        ({"agent_version": ""}, "agent_version"),
        ({"agent_version": 7}, "agent_version"),
        ({"agent_version": "x" * 41}, "agent_version"),
        ({"agent_version": "1", "runtimes": []}, "runtimes"),
        ({"agent_version": "1", "runtimes": {"docker": "ready"}}, "runtimes.docker"),
        ({"agent_version": "1", "runtimes": {"docker": {"phase": "dancing"}}}, "runtimes.docker.phase"),
        (
            {"agent_version": "1", "runtimes": {"docker": {"phase": "ready", "version": 3}}},
            "runtimes.docker.version",
        ),
        ({"agent_version": "1", "runtimes": {"docker": {"junk": "x" * 5000}}}, "runtimes"),
        ({"agent_version": "1", "wireguard_public_key": "not-base64!"}, "wireguard_public_key"),
        (
            {"agent_version": "1", "wireguard_public_key": base64.b64encode(b"short").decode()},
            "wireguard_public_key",
        ),
    ],
)
def test_bad_heartbeat_is_400_and_records_nothing(docker_fleet, agent, body, field):
    before = state_counts()
    status, answer = agent.post(HEARTBEAT, body)
    error = assert_error(status, answer, 400, "ValidationError")
    assert field in error["details"]["fields"]
    assert state_counts() == before
    instance = NodeInstance.objects.get()
    assert (instance.last_heartbeat_at, instance.status, instance.wireguard_public_key) == (
        None,
        NodeInstance.Status.PROVISIONED,
        "",
    )


@pytest.mark.parametrize(
    "raw, status_code, error_type",
    [
        ("{not json", 400, "ValidationError"),
        ("[1, 2]", 400, "ValidationError"),
        ('"text"', 400, "ValidationError"),
        ('{"agent_version": "1", "pad": "' + "x" * (70 * 1024) + '"}', 413, "PayloadTooLarge"),
    ],
)
def test_malformed_or_oversize_body(docker_fleet, agent, raw, status_code, error_type):
    before = state_counts()
    status, answer = agent.post(HEARTBEAT, raw=raw)
    assert_error(status, answer, status_code, error_type)
    assert state_counts() == before
    assert NodeInstance.objects.get().last_heartbeat_at is None


def test_non_json_content_type_is_415(docker_fleet, agent):
    response = agent.client.post(
        HEARTBEAT, data="agent_version=1", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 415
    assert response.json()["error"]["type"] == "ValidationError"


def test_get_is_405_in_the_error_shape(docker_fleet, agent):
    response = agent.client.get(HEARTBEAT)
    assert response.status_code == 405
    assert set(response.json()["error"]) == {"type", "message", "details"}
