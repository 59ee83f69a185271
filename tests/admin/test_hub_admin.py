"""The admin's hub pages: hub tokens (read-only, revoke runs the action), tunnel columns, stale grants."""

from __future__ import annotations

import time

from apps.events.models import Event
from apps.sdwan import wireguard
from apps.sdwan.models import HubToken, SdwanPeer
from tests.agents import AgentClient, HubClient
from tests.factories import DockerHostFactory, HubTokenFactory, report_hub_key


def test_hub_tokens_are_listed_without_their_secret_and_revoked_through_the_action(root_client, db):
    token = HubTokenFactory(name="hub-admin")
    listing = root_client.get("/admin/sdwan/hubtoken/").content.decode()
    assert "hub-admin" in listing and token.hub_token not in listing and token.token_hash not in listing
    page = root_client.get(f"/admin/sdwan/hubtoken/{token.pk}/change/").content.decode()
    assert token.token_hash not in page and 'name="name"' not in page  # read-only
    assert root_client.get("/admin/sdwan/hubtoken/add/").status_code == 403
    response = root_client.post(
        "/admin/sdwan/hubtoken/", {"action": "revoke_selected", "_selected_action": [str(token.pk)]}
    )
    assert response.status_code == 302
    assert HubToken.objects.get(pk=token.pk).revoked_at is not None
    assert Event.objects.get(kind="system.sdwan.hub_token.revoked").actor == "root-op"


def test_peers_and_docker_hosts_show_the_tunnel(root_client, fleet):
    key = wireguard.generate_keypair().public_key
    AgentClient(fleet["agent_token"]).heartbeat(wireguard_public_key=key)
    peer = SdwanPeer.objects.select_related("network", "node_instance").get(pk=fleet["peer"]["id"])
    host = DockerHostFactory(connected=True, node_instance=peer.node_instance, network=peer.network)
    assert host.overlay_address == peer.overlay_address
    hosts = root_client.get("/admin/docker_hosts/dockerhost/").content.decode()
    assert "column-tunnel" in hosts and "unknown" in hosts
    HubClient(HubTokenFactory().hub_token).ok(status={"networks": [{
        "network_id": fleet["network"]["id"],
        "public_key": fleet["network"]["hub_public_key"],
        "peers": [{"public_key": key, "latest_handshake": int(time.time()), "rx_bytes": 1, "tx_bytes": 1}],
    }]})
    peers = root_client.get("/admin/sdwan/sdwanpeer/").content.decode()
    assert "column-tunnel" in peers and '<td class="field-tunnel">up</td>' in peers
    hosts = root_client.get("/admin/docker_hosts/dockerhost/").content.decode()
    assert '<td class="field-tunnel">up</td>' in hosts
    assert "up" in root_client.get(f"/admin/docker_hosts/dockerhost/{host.pk}/change/").content.decode()


def test_a_grant_naming_an_old_hub_key_says_so(root_client, api, fleet):
    api.ok("system_sdwan_create_access_grant", {"network_id": fleet["network"]["id"], "device_name_hint": "lap"})
    assert "create a new grant" not in root_client.get("/admin/sdwan/accessgrant/").content.decode()
    report_hub_key(fleet["network"]["id"])  # the hub host's keys were remade
    listing = root_client.get("/admin/sdwan/accessgrant/").content.decode()
    assert "config names an old hub key: create a new grant" in listing
