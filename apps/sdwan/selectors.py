"""Reads of SDWAN state."""

from __future__ import annotations

from apps.sdwan import wireguard
from apps.sdwan.models import AccessGrant, SdwanNetwork, SdwanPeer
from apps.sdwan.services import network_get
from powernode import secretbox


def peer_list(*, network_id: str) -> list[SdwanPeer]:
    network = network_get(network_id=network_id)
    return list(network.peers.order_by("created_at", "overlay_address"))


def access_grant_list(*, network_id: str) -> list[AccessGrant]:
    network = network_get(network_id=network_id)
    return list(network.access_grants.select_related("peer").order_by("created_at", "id"))


def hub_peers(*, network: SdwanNetwork) -> list[SdwanPeer]:
    """The peers the hub admits on a network: every peer with a known key, except the hub itself and the
    device peers of revoked access grants."""
    return list(
        network.peers.exclude(kind=SdwanPeer.Kind.PLATFORM)
        .exclude(public_key="")
        .exclude(access_grant__revoked_at__isnull=False)
        .order_by("created_at", "overlay_address")
    )


def hub_config(*, network: SdwanNetwork, listen_port: int | None = None) -> str:
    """The hub interface's wg config for a network: the peers of ``hub_peers`` (revoked devices left out)."""
    peers = [(p.public_key, p.overlay_address) for p in hub_peers(network=network)]
    return wireguard.render_hub_config(
        private_key=secretbox.decrypt(network.hub_private_key_encrypted), listen_port=listen_port, peers=peers
    )
