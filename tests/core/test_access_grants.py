"""Device access grants: listed, revoked through the action (once), and a revoked device leaves the hub."""

from __future__ import annotations

from apps.events.models import Event
from apps.sdwan.models import AccessGrant, SdwanPeer
from tests.agents import HubClient
from tests.factories import HubTokenFactory


def _grant(api, fleet, hint: str = "ops-laptop") -> dict:  # noqa: ANN001
    return api.ok(
        "system_sdwan_create_access_grant", {"network_id": fleet["network"]["id"], "device_name_hint": hint}
    )["grant"]


def _hub_keys(network_id: str) -> set[str]:
    """The peer keys a hub is told to admit on the network (its sync answer)."""
    return set(HubClient(HubTokenFactory().hub_token).peer_keys(network_id))


def test_list_access_grants_shows_every_field(api, fleet):
    grant = _grant(api, fleet)
    grants = api.ok("system_sdwan_list_access_grants", {"network_id": fleet["network"]["id"]})["grants"]
    assert [g["id"] for g in grants] == [grant["id"]]
    listed = grants[0]
    peer = SdwanPeer.objects.get(pk=grant["peer_id"])
    assert listed["peer_id"] == grant["peer_id"]
    assert listed["overlay_address"] == grant["overlay_address"]
    assert listed["device_name_hint"] == "ops-laptop"
    assert listed["public_key"] == peer.public_key and listed["public_key"]
    assert listed["created_at"] and listed["revoked_at"] is None


def test_revoke_access_grant_drops_the_device_from_the_hub(api, fleet):
    network_id = fleet["network"]["id"]
    kept, revoked = _grant(api, fleet, "kept-laptop"), _grant(api, fleet, "lost-laptop")
    revoked_key = SdwanPeer.objects.get(pk=revoked["peer_id"]).public_key
    assert revoked_key in _hub_keys(network_id)

    body = api.ok("system_sdwan_revoke_access_grant", {"grant_id": revoked["id"]})
    assert body["grant"]["id"] == revoked["id"] and body["grant"]["revoked_at"]

    keys = _hub_keys(network_id)
    assert revoked_key not in keys
    assert SdwanPeer.objects.get(pk=kept["peer_id"]).public_key in keys
    # the peer row stays and holds its /128: the next grant gets a fresh address
    assert SdwanPeer.objects.filter(pk=revoked["peer_id"]).exists()
    fresh = _grant(api, fleet, "new-laptop")
    assert fresh["overlay_address"] not in {kept["overlay_address"], revoked["overlay_address"]}

    events = Event.objects.filter(kind="system.sdwan.access_grant.revoked")
    assert [e.data["grant_id"] for e in events] == [revoked["id"]]
    listed = {g["id"]: g for g in api.ok("system_sdwan_list_access_grants", {"network_id": network_id})["grants"]}
    assert listed[revoked["id"]]["revoked_at"] and listed[kept["id"]]["revoked_at"] is None


def test_revoking_twice_is_idempotent(api, fleet):
    grant = _grant(api, fleet)
    first = api.ok("system_sdwan_revoke_access_grant", {"grant_id": grant["id"]})["grant"]
    second = api.ok("system_sdwan_revoke_access_grant", {"grant_id": grant["id"]})["grant"]
    assert second["revoked_at"] == first["revoked_at"]
    assert Event.objects.filter(kind="system.sdwan.access_grant.revoked").count() == 1


def test_revoke_needs_sdwan_manage_and_changes_nothing(api, api_as, fleet):
    grant = _grant(api, fleet)
    viewer = api_as("sdwan-viewer", perms=["sdwan_view"])
    status, body = viewer.call("system_sdwan_revoke_access_grant", {"grant_id": grant["id"]})
    assert status == 403 and body["error"]["type"] == "PermissionDenied"
    assert AccessGrant.objects.get(pk=grant["id"]).revoked_at is None
    assert viewer.ok("system_sdwan_list_access_grants", {"network_id": fleet["network"]["id"]})["grants"]
