"""hub_endpoint is host:port and nothing else: it is written into every device's wg-quick config, which
``wg-quick up`` runs as root on the operator's laptop (issue 11, item 2)."""

from __future__ import annotations

import pytest

from apps.events.models import Event
from apps.sdwan import wireguard
from apps.sdwan.models import AccessGrant, SdwanNetwork, SdwanPeer
from powernode.errors import ValidationError
from tests.factories import report_hub_key

INJECTION = "h:51820\n[Interface]\nPostUp = id"
BAD = [
    INJECTION,
    "h:51820\n",  # a JSON Schema "$" alone would let a final newline through
    "h:51820\r\nPostUp = id",
    "h:51820\x00",
    "hub.example.org",  # no port
    "hub.example.org:0",
    "hub.example.org:65536",
    "fd00::1:51820",  # IPv6 without brackets
    "[fd00::zz]:51820",
    "300.1.1.1:51820",
    "-hub:51820",
    "hub example:51820",
    "hub:51820 PostUp=id",
]
GOOD = ["hub.example.org:51820", "[fd00::1]:51820", "192.0.2.1:51820", "hub:1", "HUB-1.example:65535"]


@pytest.mark.parametrize("endpoint", BAD)
def test_a_bad_hub_endpoint_is_400_and_no_network_is_made(api, endpoint):
    status, body = api.call("system_sdwan_create_network", {"name": "net-x", "hub_endpoint": endpoint})
    assert status == 400, body
    assert body["error"]["type"] == "ValidationError" and "hub_endpoint" in body["error"]["message"]
    assert not SdwanNetwork.objects.exists() and not Event.objects.exists()


@pytest.mark.parametrize("endpoint", BAD)
def test_the_service_refuses_what_the_schema_would_not_see(admin_actor, endpoint):
    from apps.sdwan.services import network_create

    with pytest.raises(ValidationError, match="hub_endpoint"):
        network_create(name="net-x", hub_endpoint=endpoint, actor=admin_actor)
    assert not SdwanNetwork.objects.exists()


@pytest.mark.parametrize("endpoint", GOOD)
def test_host_port_forms_are_accepted_and_rendered(api, endpoint):
    network = api.ok("system_sdwan_create_network", {"name": "net-x", "hub_endpoint": endpoint})["network"]
    assert network["hub_endpoint"] == endpoint
    assert network["hub_listen_port"] == int(endpoint.rsplit(":", 1)[1])  # the hub listens where devices dial
    report_hub_key(network["id"])
    grant = api.ok("system_sdwan_create_access_grant", {"network_id": network["id"], "device_name_hint": "laptop"})
    config = grant["grant"]["wireguard_config"]
    assert f"Endpoint = {endpoint}\n" in config and config.count("[Interface]") == 1


def test_a_stored_bad_endpoint_never_reaches_a_config(api, fleet):
    """A row written some other way (``.update()``, a restore): the renderer refuses and nothing changes."""
    network_id = fleet["network"]["id"]
    SdwanNetwork.objects.filter(pk=network_id).update(hub_endpoint=INJECTION)
    before = (SdwanPeer.objects.count(), Event.objects.count(), SdwanNetwork.objects.get(pk=network_id).next_host_index)
    payload = {"network_id": network_id, "device_name_hint": "laptop"}
    status, body = api.call("system_sdwan_create_access_grant", payload)
    assert status == 400 and body["error"]["type"] == "ValidationError", body
    assert "PostUp" not in str(body)
    assert not AccessGrant.objects.exists()
    after = (SdwanPeer.objects.count(), Event.objects.count(), SdwanNetwork.objects.get(pk=network_id).next_host_index)
    assert after == before


@pytest.mark.parametrize("field", ["private_key", "address", "hub_public_key", "allowed_ips"])
def test_the_client_renderer_refuses_control_characters_in_any_field(field):
    fields = {
        "private_key": "a" * 43 + "=",
        "address": "fd00:abcd:1::5",
        "hub_public_key": "b" * 43 + "=",
        "hub_endpoint": "hub.example.org:51820",
        "allowed_ips": "fd00:abcd:1::/64",
    }
    fields[field] += "\nPostUp = id"
    with pytest.raises(ValidationError, match=field):
        wireguard.render_client_config(**fields)
