"""system_sdwan_detach_peer: the peer goes (its /128 is never handed out again), not under a live docker host."""

from __future__ import annotations

import pytest

from apps.events.models import Event
from apps.sdwan.models import SdwanNetwork, SdwanPeer
from tests.factories import DockerHostFactory, NodeInstanceFactory, SdwanPeerFactory

MISSING = "0193a1b2-0000-7000-8000-00000000dead"


def _detach(api, network_id, instance_id) -> tuple[int, dict]:  # noqa: ANN001
    return api.call("system_sdwan_detach_peer", {"network_id": str(network_id), "node_instance_id": str(instance_id)})


def test_detach_removes_the_peer_and_its_address_is_not_reused(api, fleet):
    network_id, instance_id = fleet["network"]["id"], fleet["instance"]["id"]
    status, body = _detach(api, network_id, instance_id)
    assert status == 200, body
    assert body["detached"] is True and body["peer"]["id"] == fleet["peer"]["id"]
    assert body["peer"]["overlay_address"] == fleet["peer"]["overlay_address"]
    assert not SdwanPeer.objects.filter(pk=fleet["peer"]["id"]).exists()
    event = Event.objects.get(kind="system.sdwan.peer.detached")
    assert str(event.instance_id) == instance_id
    assert event.data["peer_id"] == fleet["peer"]["id"]
    assert event.data["overlay_address"] == body["peer"]["overlay_address"]

    again = api.ok("system_sdwan_attach_peer", {"network_id": network_id, "node_instance_id": instance_id})["peer"]
    assert again["overlay_address"] != fleet["peer"]["overlay_address"]
    # detaching twice: the second is a 404 (not a peer any more)
    api.ok("system_sdwan_detach_peer", {"network_id": network_id, "node_instance_id": instance_id})
    status, body = _detach(api, network_id, instance_id)
    assert status == 404 and body["error"]["type"] == "NotFound"


@pytest.mark.parametrize("which", ["network", "instance", "not a peer"])
def test_unknown_network_instance_or_membership_is_404(api, fleet, which):
    network_id, instance_id = fleet["network"]["id"], fleet["instance"]["id"]
    if which == "network":
        network_id = MISSING
    elif which == "instance":
        instance_id = MISSING
    else:
        instance_id = NodeInstanceFactory(name="loner").id
    before = (SdwanPeer.objects.count(), Event.objects.count())
    status, body = _detach(api, network_id, instance_id)
    assert status == 404 and body["error"]["type"] == "NotFound", body
    assert (SdwanPeer.objects.count(), Event.objects.count()) == before


@pytest.mark.parametrize("trait", ["pending", "connected", "decommissioning", "failed"])
def test_a_live_docker_host_on_the_address_refuses_the_detach(api, db, trait):
    peer = SdwanPeerFactory()
    traits = {} if trait == "pending" else {trait: True}
    host = DockerHostFactory(node_instance=peer.node_instance, network=peer.network, **traits)
    assert host.overlay_address == peer.overlay_address
    def state() -> tuple:
        return SdwanPeer.objects.count(), Event.objects.count(), SdwanNetwork.objects.get(pk=peer.network_id)

    before = state()
    status, body = _detach(api, peer.network_id, peer.node_instance_id)
    assert status == 409 and body["error"]["type"] == "PeerInUseError", body
    assert body["error"]["details"]["in_use_by"][0]["host_id"] == host.id
    assert "system_decommission_docker_runtime" in body["error"]["message"]
    after = state()
    assert after[:2] == before[:2] and after[2].next_host_index == before[2].next_host_index


def test_a_decommissioned_host_does_not_hold_the_peer(api, db):
    peer = SdwanPeerFactory()
    DockerHostFactory(node_instance=peer.node_instance, network=peer.network, decommissioned=True)
    status, body = _detach(api, peer.network_id, peer.node_instance_id)
    assert status == 200, body
    assert not SdwanPeer.objects.filter(pk=peer.pk).exists()
