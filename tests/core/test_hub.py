"""Hub tokens, hub authentication and ``POST /api/v1/hub/sync`` (issue 12, the platform's side of the hub)."""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from apps.events.models import Event
from apps.nodes.models import NodeInstance
from apps.sdwan import wireguard
from apps.sdwan.hub_views import MAX_HUB_BODY_BYTES
from apps.sdwan.models import AccessGrant, HubToken, SdwanNetwork, SdwanPeer
from apps.system.authentication import operator_for_token
from powernode.errors import NotAuthenticated
from tests.agents import AgentClient, HubClient
from tests.factories import HubTokenFactory, NodeInstanceFactory, SdwanNetworkFactory, SdwanPeerFactory

pytestmark = pytest.mark.django_db


def new_key() -> str:
    return wireguard.generate_keypair().public_key


@pytest.fixture
def hub_token(db) -> HubToken:
    return HubTokenFactory(name="hub-main")


@pytest.fixture
def hub(hub_token) -> HubClient:
    return HubClient(hub_token.hub_token)


def network_answer(answer: dict, network_id: str) -> dict:
    return next(n for n in answer["networks"] if n["network_id"] == str(network_id))


def report(network_id: str, public_key: str, peers: list[dict] | None = None) -> dict:
    return {"networks": [{"network_id": str(network_id), "public_key": public_key, "peers": peers or []}]}


def heartbeat_hub(agent_token: str, network_id: str) -> dict:
    body = AgentClient(agent_token).heartbeat()[1]
    return next(m for m in body["sdwan"] if m["network_id"] == str(network_id))["hub"]


def snapshot() -> dict[str, Any]:
    """Everything a sync may write, by value."""
    return {
        "networks": sorted(SdwanNetwork.objects.values_list("id", "hub_public_key")),
        "peers": sorted(
            SdwanPeer.objects.values_list(
                "id", "public_key", "last_handshake_at", "rx_bytes", "tx_bytes", "hub_reported_at"
            )
        ),
        "grants": sorted(AccessGrant.objects.values_list("id", "hub_public_key", "revoked_at")),
        "tokens": sorted(HubToken.objects.values_list("id", "hub_version", "applied_version", "revoked_at")),
        "events": Event.objects.count(),
    }


# -- tokens --------------------------------------------------------------------------------------------------


def test_create_list_and_revoke_a_hub_token(api):
    body = api.ok("system_sdwan_create_hub_token", {"name": "hub-1"})
    secret = body["hub_token"]
    assert secret.startswith("pnh_") and len(secret.split("_")[1]) == 12
    assert set(body["token"]) == {"id", "name", "created_at"} and body["token"]["name"] == "hub-1"
    row = HubToken.objects.get(pk=body["token"]["id"])
    assert row.token_hash != secret and secret not in json.dumps(list(HubToken.objects.values()), default=str)
    created = Event.objects.get(kind="system.sdwan.hub_token.created")
    assert created.data["hub_token_id"] == str(row.id) and secret not in json.dumps(created.data)

    status, dup = api.call("system_sdwan_create_hub_token", {"name": "hub-1"})
    assert status == 409 and dup["error"]["type"] == "ConflictError"
    assert HubToken.objects.count() == 1

    HubClient(secret).ok(status={"applied_version": "v1"})
    listed = api.ok("system_sdwan_list_hub_tokens")["tokens"]
    assert [t["name"] for t in listed] == ["hub-1"]
    assert listed[0]["last_used_at"] and listed[0]["hub_version"] == "0.4.0" and listed[0]["applied_version"] == "v1"
    assert listed[0]["revoked_at"] is None and listed[0]["created_by"] == "ops-admin"
    assert secret not in json.dumps(listed) and "token_hash" not in listed[0]

    revoked = api.ok("system_sdwan_revoke_hub_token", {"token_id": str(row.id)})["token"]
    assert revoked["revoked_at"]
    again = api.ok("system_sdwan_revoke_hub_token", {"token_id": str(row.id)})["token"]
    assert again["revoked_at"] == revoked["revoked_at"]
    assert Event.objects.filter(kind="system.sdwan.hub_token.revoked").count() == 1
    status, refused = HubClient(secret).sync()
    assert status == 401 and refused["error"]["type"] == "NotAuthenticated"


def test_viewers_list_but_do_not_make_or_revoke_hub_tokens(api_as, hub_token):
    viewer = api_as("viewer", perms=["sdwan_view"])
    assert [t["name"] for t in viewer.ok("system_sdwan_list_hub_tokens")["tokens"]] == ["hub-main"]
    assert viewer.call("system_sdwan_create_hub_token", {"name": "x"})[0] == 403
    assert viewer.call("system_sdwan_revoke_hub_token", {"token_id": str(hub_token.id)})[0] == 403
    assert HubToken.objects.get().revoked_at is None


def test_last_used_at_is_written_at_most_once_a_minute(hub, hub_token):
    hub.ok()
    first = HubToken.objects.get().last_used_at
    hub.ok()
    assert HubToken.objects.get().last_used_at == first
    HubToken.objects.update(last_used_at=first - dt.timedelta(seconds=61))
    hub.ok()
    assert HubToken.objects.get().last_used_at > first


# -- authentication --------------------------------------------------------------------------------------------


def _error(response) -> dict:  # noqa: ANN001 - a Django test response
    body = response.json()
    assert set(body["error"]) == {"type", "message", "details"}, body
    return body["error"]


def test_a_hub_token_is_refused_on_agent_and_operator_endpoints(fleet, hub_token):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {hub_token.hub_token}")
    for path in ["/api/v1/agent/heartbeat", "/api/v1/runtime/handshake", "/api/v1/actions/system_list_modules"]:
        response = client.post(path, data=json.dumps({"agent_version": "1", "phase": "installing"}),
                               content_type="application/json")
        assert response.status_code == 401, (path, response.content)
        assert _error(response)["type"] == "NotAuthenticated"
    for path in ["/api/v1/actions/", "/api/v1/instances/", "/api/v1/sdwan/peers/", "/api/v1/events/"]:
        response = client.get(path)
        assert response.status_code == 401, (path, response.content)
    with pytest.raises(NotAuthenticated):  # what /mcp (HTTP and stdio) authenticates with
        operator_for_token(hub_token.hub_token)


def test_only_a_live_hub_token_opens_the_hub_endpoint(api, fleet, hub_token, admin_user):
    revoked = HubTokenFactory(name="old-hub")
    HubToken.objects.filter(pk=revoked.pk).update(revoked_at=timezone.now())
    operator = api.client._credentials["HTTP_AUTHORIZATION"].split(" ", 1)[1]
    prefix = hub_token.hub_token.rsplit("_", 1)[0]
    wrong = {
        "no header": None,
        "basic": "Basic b3BzOnB3",
        "empty bearer": "Bearer ",
        "operator token": f"Bearer {operator}",
        "agent token": f"Bearer {fleet['agent_token']}",
        "revoked hub token": f"Bearer {revoked.hub_token}",
        "wrong secret": f"Bearer {prefix}_{'A' * 43}",
        "unknown prefix": f"Bearer pnh_000000000000_{'A' * 43}",
        "garbage": "Bearer pnh_",
    }
    for label, header in wrong.items():
        client = APIClient()
        if header:
            client.credentials(HTTP_AUTHORIZATION=header)
        response = client.post("/api/v1/hub/sync", data='{"hub_version": "1"}', content_type="application/json")
        assert response.status_code == 401, (label, response.content)
        assert _error(response)["type"] == "NotAuthenticated", label
    session = APIClient()
    session.force_login(admin_user)
    response = session.post("/api/v1/hub/sync", data=json.dumps({"hub_version": "1"}), content_type="application/json")
    assert response.status_code == 401
    assert HubToken.objects.get(pk=hub_token.pk).hub_version == ""


# -- the sync ------------------------------------------------------------------------------------------------


def test_the_answer_has_the_contract_shape(fleet, hub):
    agent_key = new_key()
    AgentClient(fleet["agent_token"]).heartbeat(wireguard_public_key=agent_key)
    SdwanNetworkFactory(name="net-b", prefix="fd00:abcd:2::/64")  # no key, no peers yet
    answer = hub.ok()
    assert set(answer) == {"desired_version", "poll_interval_s", "networks"}
    assert answer["poll_interval_s"] == 2
    assert [n["name"] for n in answer["networks"]] == ["net-a", "net-b"]
    net_a, net_b = answer["networks"]
    assert net_a == {
        "network_id": fleet["network"]["id"],
        "name": "net-a",
        "prefix": "fd00:abcd:1::/64",
        "hub_address": "fd00:abcd:1::1",
        "listen_port": 51820,
        "public_key": fleet["network"]["hub_public_key"],
        "peers": [{"public_key": agent_key, "allowed_ips": [f"{fleet['peer']['overlay_address']}/128"]}],
    }
    assert net_b["public_key"] == "" and net_b["peers"] == [] and net_b["listen_port"] == 51821


def test_the_poll_interval_comes_from_the_setting(hub, settings):
    settings.POWERNODE_HUB_POLL_INTERVAL_S = 7
    assert hub.ok()["poll_interval_s"] == 7


def test_first_key_report_and_rekey(api, hub, db):
    instance = NodeInstanceFactory(name="node-r")
    network = SdwanNetworkFactory(name="net-r", prefix="fd00:abcd:9::/64")
    SdwanPeerFactory(network=network, node_instance=instance)
    hub_peer = SdwanPeer.objects.get(network=network, kind=SdwanPeer.Kind.PLATFORM)
    assert network.hub_public_key == "" and hub_peer.public_key == ""
    assert heartbeat_hub(instance.agent_token, network.id)["public_key"] is None  # not "": no hub peer yet

    before, index = snapshot(), SdwanNetwork.objects.get(pk=network.pk).next_host_index
    grant_input = {"network_id": str(network.id), "device_name_hint": "l"}
    status, body = api.call("system_sdwan_create_access_grant", grant_input)
    assert status == 409 and body["error"]["type"] == "HubNotReadyError"
    assert "powernode-agent hub" in body["error"]["message"] and "docs/runbooks/hub.md" in body["error"]["message"]
    assert snapshot() == before and SdwanNetwork.objects.get(pk=network.pk).next_host_index == index

    first = new_key()
    answer = hub.ok(status=report(network.id, first))
    assert network_answer(answer, network.id)["public_key"] == first
    assert SdwanNetwork.objects.get(pk=network.pk).hub_public_key == first
    assert SdwanPeer.objects.get(pk=hub_peer.pk).public_key == first
    assert heartbeat_hub(instance.agent_token, network.id)["public_key"] == first
    event = Event.objects.get(kind="system.sdwan.hub.rekeyed")
    assert event.data == {
        "network_id": str(network.id), "previous_public_key": "", "public_key": first, "stale_access_grants": 0
    }
    assert event.actor == "hub:hub-main"

    grant = api.ok("system_sdwan_create_access_grant", {"network_id": str(network.id), "device_name_hint": "l"})
    assert f"PublicKey = {first}\n" in grant["grant"]["wireguard_config"]
    listed = api.ok("system_sdwan_list_access_grants", {"network_id": str(network.id)})["grants"]
    assert listed[0]["hub_key_current"] is True and listed[0]["hub_public_key"] == first

    hub.ok(status=report(network.id, first))  # the same key again: nothing to do
    assert Event.objects.filter(kind="system.sdwan.hub.rekeyed").count() == 1

    second = new_key()  # the hub host's keys were remade
    hub.ok(status=report(network.id, second))
    event = Event.objects.filter(kind="system.sdwan.hub.rekeyed").latest("occurred_at")
    assert event.data["previous_public_key"] == first and event.data["public_key"] == second
    assert event.data["stale_access_grants"] == 1
    assert SdwanPeer.objects.get(pk=hub_peer.pk).public_key == second
    assert heartbeat_hub(instance.agent_token, network.id)["public_key"] == second
    listed = api.ok("system_sdwan_list_access_grants", {"network_id": str(network.id)})["grants"]
    assert listed[0]["hub_key_current"] is False and listed[0]["hub_public_key"] == first


@pytest.mark.parametrize("holder", ["instance peer", "instance", "device", "other network's hub"])
def test_a_key_held_elsewhere_refuses_the_whole_sync(api, fleet, hub, holder):
    network_id = fleet["network"]["id"]
    other = SdwanNetworkFactory(name="net-o", prefix="fd00:abcd:7::/64")
    third = SdwanNetworkFactory(name="net-t", prefix="fd00:abcd:8::/64")
    taken = new_key()
    if holder == "instance peer":
        AgentClient(fleet["agent_token"]).heartbeat(wireguard_public_key=taken)
    elif holder == "instance":
        NodeInstance.objects.filter(pk=fleet["instance"]["id"]).update(wireguard_public_key=taken)
    elif holder == "device":
        grant = api.ok("system_sdwan_create_access_grant", {"network_id": network_id, "device_name_hint": "d"})
        taken = AccessGrant.objects.get(pk=grant["grant"]["id"]).peer.public_key
    else:
        taken = fleet["network"]["hub_public_key"]
        network_id = str(other.id)
    before = snapshot()
    fine = {"network_id": str(third.id), "public_key": new_key(), "peers": []}  # refused with the rest
    status, body = hub.sync({
        "hub_version": "9.9.9",
        "status": {"applied_version": "x", "networks": [fine, {"network_id": network_id, "public_key": taken}]},
    })
    assert status == 409, body
    assert body["error"]["type"] == "PeerKeyConflictError" and body["error"]["details"]["network_id"] == network_id
    assert snapshot() == before


def test_handshakes_and_counters_are_recorded(api, fleet, hub):
    network_id = fleet["network"]["id"]
    agent_key = new_key()
    AgentClient(fleet["agent_token"]).heartbeat(wireguard_public_key=agent_key)
    device = api.ok("system_sdwan_create_access_grant", {"network_id": network_id, "device_name_hint": "d"})["grant"]
    device_key = SdwanPeer.objects.get(pk=device["peer_id"]).public_key
    idle = api.ok("system_sdwan_create_access_grant", {"network_id": network_id, "device_name_hint": "i"})["grant"]
    peers = {p["id"]: p for p in api.ok("system_sdwan_list_peers", {"network_id": network_id})["peers"]}
    assert {p["tunnel"] for p in peers.values()} == {"unknown"}

    now = int(time.time())
    reported = report(network_id, fleet["network"]["hub_public_key"], [
        {"public_key": agent_key, "latest_handshake": now - 5, "rx_bytes": 1000, "tx_bytes": 2000},
        {"public_key": device_key, "latest_handshake": 0, "rx_bytes": 0, "tx_bytes": 0},
        {"public_key": new_key(), "latest_handshake": now, "rx_bytes": 1, "tx_bytes": 1},  # unknown: ignored
    ])
    deleted = {"network_id": "0193a1b2-0000-7000-8000-0000000000ff", "public_key": new_key(), "peers": []}
    hub.ok(status={"networks": [*reported["networks"], deleted]})  # an unknown network is ignored
    peers = {p["id"]: p for p in api.ok("system_sdwan_list_peers", {"network_id": network_id})["peers"]}
    mine = peers[fleet["peer"]["id"]]
    assert mine["tunnel"] == "up" and mine["rx_bytes"] == 1000 and mine["tx_bytes"] == 2000
    assert dt.datetime.fromisoformat(mine["last_handshake_at"]).timestamp() == now - 5
    assert peers[device["peer_id"]]["tunnel"] == "down" and peers[device["peer_id"]]["last_handshake_at"] is None
    assert peers[idle["peer_id"]]["tunnel"] == "unknown"  # not in the hub's report
    resource = APIClient()
    resource.credentials(**api.client._credentials)
    listed = resource.get(f"/api/v1/sdwan/peers/{fleet['peer']['id']}/").json()
    assert listed["tunnel"] == "up" and listed["rx_bytes"] == 1000

    # an old handshake is a tunnel down (WireGuard re-handshakes every 120 s while it is used)
    stale = timezone.now() - dt.timedelta(seconds=181)
    SdwanPeer.objects.filter(pk=fleet["peer"]["id"]).update(last_handshake_at=stale)
    assert api.ok("system_sdwan_list_peers", {"network_id": network_id})["peers"][1]["tunnel"] == "down"


def test_only_changed_peers_are_written(fleet, hub):
    network_id, hub_key = fleet["network"]["id"], fleet["network"]["hub_public_key"]
    agent_key = new_key()
    AgentClient(fleet["agent_token"]).heartbeat(wireguard_public_key=agent_key)
    peer = {"public_key": agent_key, "latest_handshake": 1733140000, "rx_bytes": 5, "tx_bytes": 6}
    hub.ok(status=report(network_id, hub_key, [peer]))
    reported_at = SdwanPeer.objects.get(pk=fleet["peer"]["id"]).hub_reported_at
    hub.ok(status=report(network_id, hub_key, [peer]))
    assert SdwanPeer.objects.get(pk=fleet["peer"]["id"]).hub_reported_at == reported_at
    hub.ok(status=report(network_id, hub_key, [peer | {"rx_bytes": 7}]))
    row = SdwanPeer.objects.get(pk=fleet["peer"]["id"])
    assert row.rx_bytes == 7 and row.hub_reported_at > reported_at


def _malformed(network_id: str, hub_key: str, peer_key: str) -> list[tuple[str, Any]]:
    good_peer = {"public_key": peer_key, "latest_handshake": 1, "rx_bytes": 1, "tx_bytes": 1}

    def with_peer(**change: Any) -> dict:
        return {"hub_version": "1", "status": {"networks": [
            {"network_id": network_id, "public_key": hub_key, "peers": [good_peer, good_peer | change]}]}}

    def with_network(**change: Any) -> dict:
        return {"hub_version": "1", "status": {"networks": [
            {"network_id": network_id, "public_key": hub_key, "peers": [good_peer]} | change]}}

    return [
        ("hub_version", {}),
        ("hub_version", {"hub_version": ""}),
        ("hub_version", {"hub_version": 4}),
        ("hub_version", {"hub_version": "x" * 41}),
        ("hub_version", {"hub_version": "a\u0000b"}),
        ("desired_version", {"hub_version": "1", "desired_version": 5}),
        ("desired_version", {"hub_version": "1", "desired_version": "x" * 129}),
        ("wait_s", {"hub_version": "1", "wait_s": 56}),
        ("wait_s", {"hub_version": "1", "wait_s": -1}),
        ("wait_s", {"hub_version": "1", "wait_s": "5"}),
        ("wait_s", {"hub_version": "1", "wait_s": True}),
        ("status", {"hub_version": "1", "status": []}),
        ("status", {"hub_version": "1", "status": "x"}),
        ("status.applied_version", {"hub_version": "1", "status": {"applied_version": 3}}),
        ("status.networks", {"hub_version": "1", "status": {"networks": {}}}),
        ("status.networks", {"hub_version": "1", "status": {"networks": [{}] * 4097}}),
        ("status.networks[0]", {"hub_version": "1", "status": {"networks": ["x"]}}),
        ("status.networks[0].network_id", with_network(network_id="not-a-uuid")),
        ("status.networks[0].network_id", with_network(network_id=7)),
        ("status.networks[0].public_key", with_network(public_key="short")),
        ("status.networks[0].public_key", with_network(public_key=None)),
        ("status.networks[0].public_key", with_network(public_key=hub_key + "\n")),
        ("status.networks[0].peers", with_network(peers={"a": 1})),
        ("status.networks[1].network_id", {"hub_version": "1", "status": {"networks": [
            {"network_id": network_id, "public_key": hub_key}, {"network_id": network_id, "public_key": hub_key}]}}),
        ("status.networks[0].peers[1]", with_network(peers=[good_peer, 5])),
        ("status.networks[0].peers[1].public_key", with_peer(public_key="A" * 44)),
        ("status.networks[0].peers[1].latest_handshake", with_peer(latest_handshake=-1)),
        ("status.networks[0].peers[1].latest_handshake", with_peer(latest_handshake=1.5)),
        ("status.networks[0].peers[1].latest_handshake", with_peer(latest_handshake=10**13)),
        ("status.networks[0].peers[1].rx_bytes", with_peer(rx_bytes=2**63)),
        ("status.networks[0].peers[1].rx_bytes", with_peer(rx_bytes=None)),
        ("status.networks[0].peers[1].tx_bytes", with_peer(tx_bytes="1")),
        ("status.networks[0].peers[1].tx_bytes", with_peer(tx_bytes=False)),
        ("(body)", []),
        ("(body)", "text"),
    ]


def test_malformed_bodies_are_400_and_change_nothing(fleet, hub):
    network_id = fleet["network"]["id"]
    agent_key = new_key()
    AgentClient(fleet["agent_token"]).heartbeat(wireguard_public_key=agent_key)
    hub.ok()
    before = snapshot()
    for field, body in _malformed(network_id, new_key(), agent_key):  # a new hub key: a valid body re-keys
        status, answer = hub.sync(body)
        assert status == 400, (field, answer)
        assert answer["error"]["type"] == "ValidationError", field
        assert field in answer["error"]["details"]["fields"], (field, answer["error"])
        assert snapshot() == before, field
    for raw in ["{not json", '{"hub_version": "1"} x', "null", '{"hub_version": NaN}']:
        status, answer = hub.sync(raw=raw)
        assert status == 400 and answer["error"]["type"] == "ValidationError", raw
    assert snapshot() == before


def test_too_many_peers_in_all_is_400(fleet, hub):
    networks = [  # the count is checked before the peers themselves
        {"network_id": f"0193a1b2-0000-7000-8000-{i:012x}", "public_key": new_key(), "peers": [{}] * 40000}
        for i in range(2)
    ]
    status, answer = hub.sync({"hub_version": "1", "status": {"networks": networks}})
    assert status == 400 and "65536" in answer["error"]["details"]["fields"]["status.networks"]


def test_bodies_past_4_mib_are_413(fleet, hub):
    padding = "x" * (MAX_HUB_BODY_BYTES + 1)
    status, answer = hub.sync(raw=json.dumps({"hub_version": "1", "pad": padding}))
    assert status == 413 and answer["error"]["type"] == "PayloadTooLarge"
    assert answer["error"]["details"]["limit"] == MAX_HUB_BODY_BYTES
    status, _ = HubClient(None).sync(raw=json.dumps({"hub_version": "1", "pad": padding}))
    assert status == 401  # strangers learn nothing about limits
    # just under the limit is read (a big status is normal: 65,536 peers)
    status, _ = hub.sync(raw=json.dumps({"hub_version": "1", "pad": "x" * (3 * 1024 * 1024)}))
    assert status == 200


def test_desired_version_changes_exactly_when_the_desired_state_does(api, fleet, hub):
    network_id = fleet["network"]["id"]
    versions = [hub.ok()["desired_version"]]
    assert hub.ok()["desired_version"] == versions[0]  # stable while nothing changes

    def changed(label: str) -> dict:
        answer = hub.ok()
        assert answer["desired_version"] != versions[-1], label
        versions.append(answer["desired_version"])
        assert hub.ok()["desired_version"] == versions[-1], label
        return network_answer(answer, network_id)

    agent_key = new_key()
    AgentClient(fleet["agent_token"]).heartbeat(wireguard_public_key=agent_key)
    assert agent_key in [p["public_key"] for p in changed("instance key reported")["peers"]]

    other = NodeInstanceFactory(name="node-2", wireguard_public_key=new_key())
    api.ok("system_sdwan_attach_peer", {"network_id": network_id, "node_instance_id": str(other.id)})
    assert other.wireguard_public_key in [p["public_key"] for p in changed("attach")["peers"]]

    grant = api.ok("system_sdwan_create_access_grant", {"network_id": network_id, "device_name_hint": "d"})["grant"]
    device_key = SdwanPeer.objects.get(pk=grant["peer_id"]).public_key
    assert device_key in [p["public_key"] for p in changed("grant created")["peers"]]

    api.ok("system_sdwan_revoke_access_grant", {"grant_id": grant["id"]})
    assert device_key not in [p["public_key"] for p in changed("grant revoked")["peers"]]

    api.ok("system_sdwan_detach_peer", {"network_id": network_id, "node_instance_id": str(other.id)})
    assert other.wireguard_public_key not in [p["public_key"] for p in changed("detached")["peers"]]

    hub.ok(status=report(network_id, new_key()))
    answer = hub.ok()
    assert answer["desired_version"] != versions[-1]  # the re-key
    assert [p["public_key"] for p in network_answer(answer, network_id)["peers"]] == [agent_key]

    # what the hub reports of its tunnels is not desired state
    version = answer["desired_version"]
    hub.ok(status=report(network_id, network_answer(answer, network_id)["public_key"], [
        {"public_key": agent_key, "latest_handshake": int(time.time()), "rx_bytes": 1, "tx_bytes": 2}]))
    assert hub.ok()["desired_version"] == version


def test_applied_event_once_per_new_applied_version(hub, hub_token):
    version = hub.ok()["desired_version"]
    hub.ok(status={"applied_version": version})
    hub.ok(status={"applied_version": version})
    hub.ok(status={})
    events = Event.objects.filter(kind="system.sdwan.hub.applied")
    assert events.count() == 1
    assert events.get().data["applied_version"] == version and events.get().data["hub_name"] == "hub-main"
    hub.ok(status={"applied_version": "other"})
    assert events.count() == 2
    row = HubToken.objects.get(pk=hub_token.pk)
    assert row.applied_version == "other" and row.applied_at and row.hub_version == "0.4.0"


def test_a_sync_of_1000_peers_takes_a_bounded_number_of_queries(fleet, hub):
    network = SdwanNetwork.objects.get(pk=fleet["network"]["id"])
    keys = [new_key() for _ in range(1000)]
    SdwanPeer.objects.bulk_create(
        SdwanPeer(network=network, kind=SdwanPeer.Kind.DEVICE, device_name=f"d{i}",
                  overlay_address=f"fd00:abcd:1::1:{i:x}", public_key=key)
        for i, key in enumerate(keys)
    )
    now = int(time.time())

    def status(rx: int) -> dict:
        return report(network.id, network.hub_public_key, [
            {"public_key": k, "latest_handshake": now, "rx_bytes": rx, "tx_bytes": 1} for k in keys])

    with CaptureQueriesContext(connection) as first:
        answer = hub.ok(status=status(1))
    assert len(network_answer(answer, network.id)["peers"]) == 1000
    assert SdwanPeer.objects.filter(rx_bytes=1).count() == 1000
    writes = [q for q in first if q["sql"].startswith("UPDATE") and "sdwan_sdwanpeer" in q["sql"]]
    others = [q["sql"][:120] for q in first if q not in writes]
    # the peers' rows: bulk UPDATEs of as many rows as the database takes in one statement (500 on
    # PostgreSQL, fewer under SQLite's parameter limit), never one per peer; everything else is constant
    assert 1 <= len(writes) <= 8 and len(others) <= 10, (len(writes), others)
    with CaptureQueriesContext(connection) as unchanged:
        hub.ok(status=status(1))
    assert len(unchanged) <= 10, [q["sql"][:120] for q in unchanged]
    assert not [q for q in unchanged if q["sql"].startswith("UPDATE") and "sdwan_sdwanpeer" in q["sql"]]


# -- ports ---------------------------------------------------------------------------------------------------


def test_each_network_gets_its_own_hub_port(api, db):
    a = api.ok("system_sdwan_create_network", {"name": "a"})["network"]
    b = api.ok("system_sdwan_create_network", {"name": "b", "hub_endpoint": "hub.example.org:51900"})["network"]
    c = api.ok("system_sdwan_create_network", {"name": "c"})["network"]
    assert (a["hub_listen_port"], b["hub_listen_port"], c["hub_listen_port"]) == (51820, 51900, 51821)
    status, body = api.call("system_sdwan_create_network", {"name": "d", "hub_endpoint": "hub.example.org:51821"})
    assert status == 409 and body["error"]["details"]["hub_listen_port"] == 51821
    assert not SdwanNetwork.objects.filter(name="d").exists()
