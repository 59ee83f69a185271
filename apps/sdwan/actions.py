"""Operator actions for SDWAN networks, peers and device access."""

from __future__ import annotations

from typing import Any

from apps.sdwan import selectors, services
from apps.sdwan.serializers import (
    AccessGrantListSerializer,
    AccessGrantSerializer,
    HubTokenSerializer,
    SdwanNetworkSerializer,
    SdwanPeerSerializer,
)
from apps.sdwan.wireguard import ENDPOINT_PATTERN
from powernode.actors import Actor
from powernode.registry import action
from powernode.schema import name, obj, string, uuid_


@action(
    "system_sdwan_create_network",
    permission="system.sdwan_manage",
    input_schema=obj(
        required={"name": name("unique network name")},
        optional={
            "prefix": string("IPv6 ULA prefix, /64 or shorter; allocated when omitted", max_length=64),
            "hub_endpoint": string(
                "host:port where peers reach the hub, e.g. hub.example.org:51820 or [fd00::1]:51820",
                max_length=255,
                pattern=ENDPOINT_PATTERN,
            ),
        },
    ),
    example={"name": "net-a", "prefix": "fd00:abcd:1::/64"},
)
def create_network(*, actor: Actor, name: str, prefix: str | None = None, hub_endpoint: str = "") -> dict[str, Any]:
    """Create a WireGuard overlay network; the hub takes the prefix's ::1 and reports its own key when it syncs."""
    network = services.network_create(name=name, prefix=prefix, hub_endpoint=hub_endpoint, actor=actor)
    return {"network": SdwanNetworkSerializer(network).data}


@action(
    "system_sdwan_list_peers",
    permission="system.sdwan_view",
    input_schema=obj(required={"network_id": uuid_("SDWAN network id")}),
    mutates=False,
)
def list_peers(*, actor: Actor, network_id: str) -> dict[str, Any]:
    """The peers of a network with their overlay /128 and public key."""
    return {"peers": SdwanPeerSerializer(selectors.peer_list(network_id=network_id), many=True).data}


@action(
    "system_sdwan_attach_peer",
    permission="system.sdwan_manage",
    input_schema=obj(required={"network_id": uuid_("SDWAN network id"), "node_instance_id": uuid_("instance id")}),
)
def attach_peer(*, actor: Actor, network_id: str, node_instance_id: str) -> dict[str, Any]:
    """Attach an instance to a network: it gets the next free /128."""
    peer = services.peer_attach(network_id=network_id, node_instance_id=node_instance_id, actor=actor)
    return {"peer": SdwanPeerSerializer(peer).data}


@action(
    "system_sdwan_create_access_grant",
    permission="system.sdwan_manage",
    input_schema=obj(
        required={"network_id": uuid_("SDWAN network id"), "device_name_hint": name("e.g. ops-laptop")}
    ),
)
def create_access_grant(*, actor: Actor, network_id: str, device_name_hint: str) -> dict[str, Any]:
    """Give a device (an operator workstation) a peer on the network and its wg-quick config, once."""
    created = services.access_grant_create(network_id=network_id, device_name_hint=device_name_hint, actor=actor)
    return {"grant": {**AccessGrantSerializer(created.grant).data, "wireguard_config": created.wireguard_config}}


@action(
    "system_sdwan_list_access_grants",
    permission="system.sdwan_view",
    input_schema=obj(required={"network_id": uuid_("SDWAN network id")}),
    mutates=False,
)
def list_access_grants(*, actor: Actor, network_id: str) -> dict[str, Any]:
    """The device access grants of a network, revoked ones included (with their revoked_at)."""
    grants = selectors.access_grant_list(network_id=network_id)
    return {"grants": AccessGrantListSerializer(grants, many=True).data}


@action(
    "system_sdwan_revoke_access_grant",
    permission="system.sdwan_manage",
    input_schema=obj(required={"grant_id": uuid_("access grant id")}),
)
def revoke_access_grant(*, actor: Actor, grant_id: str) -> dict[str, Any]:
    """Revoke a device's access: the hub drops its peer. Revoking again changes nothing."""
    grant = services.access_grant_revoke(grant_id=grant_id, actor=actor)
    return {"grant": AccessGrantListSerializer(grant).data}


@action(
    "system_sdwan_reset_peer_key",
    permission="system.sdwan_manage",
    input_schema=obj(required={"peer_id": uuid_("SDWAN peer id (an instance's peer)")}),
)
def reset_peer_key(*, actor: Actor, peer_id: str) -> dict[str, Any]:
    """Clear a peer's pinned WireGuard key (the agent's key changed for a good reason, e.g. a reinstall):
    the next key its agent reports is accepted and pinned."""
    peer = services.peer_reset_key(peer_id=peer_id, actor=actor)
    return {"peer": SdwanPeerSerializer(peer).data}


@action(
    "system_sdwan_detach_peer",
    permission="system.sdwan_manage",
    input_schema=obj(required={"network_id": uuid_("SDWAN network id"), "node_instance_id": uuid_("instance id")}),
)
def detach_peer(*, actor: Actor, network_id: str, node_instance_id: str) -> dict[str, Any]:
    """Remove an instance from a network: the hub drops its peer; its /128 is never handed out again.
    Refused (409) while a docker host that is not decommissioned binds to that /128."""
    peer = services.peer_detach(network_id=network_id, node_instance_id=node_instance_id, actor=actor)
    return {"detached": True, "peer": SdwanPeerSerializer(peer).data}


@action(
    "system_sdwan_create_hub_token",
    permission="system.sdwan_manage",
    input_schema=obj(required={"name": name("unique name of the hub, e.g. hub-1")}),
    example={"name": "hub-1"},
)
def create_hub_token(*, actor: Actor, name: str) -> dict[str, Any]:
    """Make a hub token (pnh_...) for `powernode-agent hub`; shown once, only its hash is kept."""
    created = services.hub_token_create(name=name, actor=actor)
    token = HubTokenSerializer(created.row).data
    return {"hub_token": created.token, "token": {k: token[k] for k in ("id", "name", "created_at")}}


@action("system_sdwan_list_hub_tokens", permission="system.sdwan_view", input_schema=obj(), mutates=False)
def list_hub_tokens(*, actor: Actor) -> dict[str, Any]:
    """The hub tokens, revoked ones included: last use, the hub's version and the desired_version it last
    applied (never the secret)."""
    return {"tokens": HubTokenSerializer(selectors.hub_token_list(), many=True).data}


@action(
    "system_sdwan_revoke_hub_token",
    permission="system.sdwan_manage",
    input_schema=obj(required={"token_id": uuid_("hub token id")}),
)
def revoke_hub_token(*, actor: Actor, token_id: str) -> dict[str, Any]:
    """Revoke a hub token: its hub is refused (401) from now on. Revoking again changes nothing."""
    return {"token": HubTokenSerializer(services.hub_token_revoke(token_id=token_id, actor=actor)).data}
