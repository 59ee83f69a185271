"""Issue 11 item 8a: the first WireGuard key an agent reports for a peer is pinned.

A stolen agent token must not swap the instance's key (or take another peer's or the hub's): a changed
key is a 409 ``PeerKeyConflictError`` that changes nothing, until ``system_sdwan_reset_peer_key``.
"""

from __future__ import annotations

import base64

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.events.models import Event
from apps.nodes.models import NodeInstance
from apps.sdwan.models import SdwanNetwork, SdwanPeer
from tests.agents import AgentClient
from tests.handshake.conftest import assert_error

KEY_1 = base64.b64encode(bytes(range(32))).decode()
KEY_2 = base64.b64encode(bytes(range(1, 33))).decode()
REFUSED = "system.sdwan.peer.key_refused"


def _node_peer() -> SdwanPeer:
    return SdwanPeer.objects.get(kind=SdwanPeer.Kind.INSTANCE, node_instance__name="node-1")


def _state() -> tuple:
    instance = NodeInstance.objects.get(name="node-1")
    peer = _node_peer()
    return (instance.wireguard_public_key, instance.last_heartbeat_at, peer.public_key, peer.pinned_public_key)


def test_first_key_is_pinned_and_a_different_key_is_refused(fleet):
    agent = AgentClient(fleet["agent_token"])
    agent.heartbeat_ok(wireguard_public_key=KEY_1)
    assert _node_peer().pinned_public_key == KEY_1
    before = _state()

    status, body = agent.heartbeat(wireguard_public_key=KEY_2)
    error = assert_error(status, body, 409, "PeerKeyConflictError")
    assert "system_sdwan_reset_peer_key" in error["message"]
    assert error["details"]["peer_ids"] == [str(_node_peer().id)]
    assert _state() == before  # not even the heartbeat time moved
    refused = Event.objects.filter(kind=REFUSED)
    assert [e.data["public_key"] for e in refused] == [KEY_2]

    # the agent retries: still refused, and the refusal is not recorded again and again
    assert agent.heartbeat(wireguard_public_key=KEY_2)[0] == 409
    assert refused.count() == 1
    # the pinned key keeps working
    agent.heartbeat_ok(wireguard_public_key=KEY_1)


def test_reset_peer_key_lets_the_next_key_in(api, fleet):
    agent = AgentClient(fleet["agent_token"])
    agent.heartbeat_ok(wireguard_public_key=KEY_1)
    assert agent.heartbeat(wireguard_public_key=KEY_2)[0] == 409

    peer = api.ok("system_sdwan_reset_peer_key", {"peer_id": fleet["peer"]["id"]})["peer"]
    assert peer["pinned_public_key"] == ""
    assert peer["public_key"] == KEY_1  # the tunnel keeps its key until the agent reports one
    reset = Event.objects.get(kind="system.sdwan.peer.key_reset")
    assert reset.data["previous_pinned_key"] == KEY_1 and reset.actor

    agent.heartbeat_ok(wireguard_public_key=KEY_2)
    assert (_node_peer().public_key, _node_peer().pinned_public_key) == (KEY_2, KEY_2)
    assert NodeInstance.objects.get(name="node-1").wireguard_public_key == KEY_2
    status, body = agent.heartbeat(wireguard_public_key=KEY_1)  # the new key is pinned in its turn
    assert_error(status, body, 409, "PeerKeyConflictError")


def test_after_a_reset_the_same_key_is_pinned_again(api, fleet):
    agent = AgentClient(fleet["agent_token"])
    agent.heartbeat_ok(wireguard_public_key=KEY_1)
    api.ok("system_sdwan_reset_peer_key", {"peer_id": fleet["peer"]["id"]})
    agent.heartbeat_ok(wireguard_public_key=KEY_1)
    assert _node_peer().pinned_public_key == KEY_1
    assert agent.heartbeat(wireguard_public_key=KEY_2)[0] == 409


def test_a_key_reported_before_the_attach_is_pinned_on_the_peer(api, fleet):
    other = api.ok("system_provision_instance", {"template_id": fleet["template"]["id"], "name": "node-2"})
    agent = AgentClient(other["agent_token"])
    agent.heartbeat_ok(wireguard_public_key=KEY_2)
    peer = api.ok(
        "system_sdwan_attach_peer",
        {"network_id": fleet["network"]["id"], "node_instance_id": other["instance"]["id"]},
    )["peer"]
    assert peer["pinned_public_key"] == KEY_2
    assert agent.heartbeat(wireguard_public_key=KEY_1)[0] == 409


@pytest.mark.parametrize("holder", ["hub", "other_instance", "device"])
def test_a_key_another_peer_or_the_hub_holds_is_always_refused(api, fleet, holder):
    network_id = fleet["network"]["id"]
    if holder == "hub":
        taken = SdwanNetwork.objects.get(pk=network_id).hub_public_key
    elif holder == "other_instance":
        other = api.ok("system_provision_instance", {"template_id": fleet["template"]["id"], "name": "node-2"})
        api.ok("system_sdwan_attach_peer", {"network_id": network_id, "node_instance_id": other["instance"]["id"]})
        AgentClient(other["agent_token"]).heartbeat_ok(wireguard_public_key=KEY_2)
        taken = KEY_2
    else:
        grant = api.ok("system_sdwan_create_access_grant", {"network_id": network_id, "device_name_hint": "laptop"})
        taken = SdwanPeer.objects.get(pk=grant["grant"]["peer_id"]).public_key
    peers_before = list(SdwanPeer.objects.order_by("id").values_list("id", "public_key", "pinned_public_key"))
    agent = AgentClient(fleet["agent_token"])

    # on a peer with nothing pinned yet, and again right after an operator's reset
    for attempt in range(2):
        status, body = agent.heartbeat(wireguard_public_key=taken)
        error = assert_error(status, body, 409, "PeerKeyConflictError")
        assert error["details"]["reason"] == "in_use"
        if attempt == 0:
            api.ok("system_sdwan_reset_peer_key", {"peer_id": fleet["peer"]["id"]})
            peers_before = list(SdwanPeer.objects.order_by("id").values_list("id", "public_key", "pinned_public_key"))
    assert list(SdwanPeer.objects.order_by("id").values_list("id", "public_key", "pinned_public_key")) == peers_before
    assert NodeInstance.objects.get(name="node-1").wireguard_public_key == ""
    assert Event.objects.filter(kind=REFUSED, data__reason="in_use").exists()


def test_reset_refuses_a_peer_no_agent_reports_for(api, fleet):
    hub_peer = SdwanPeer.objects.get(kind=SdwanPeer.Kind.PLATFORM)
    status, body = api.call("system_sdwan_reset_peer_key", {"peer_id": str(hub_peer.id)})
    assert_error(status, body, 409, "ConflictError")


def test_an_unchanged_key_costs_no_more_than_no_key(fleet):
    """The hot path: a heartbeat repeating the pinned key runs the same statements as one without a key."""
    agent = AgentClient(fleet["agent_token"])
    agent.heartbeat_ok(wireguard_public_key=KEY_1)
    with CaptureQueriesContext(connection) as without_key:
        agent.heartbeat_ok()
    with CaptureQueriesContext(connection) as same_key:
        agent.heartbeat_ok(wireguard_public_key=KEY_1)
    assert len(same_key.captured_queries) == len(without_key.captured_queries)
