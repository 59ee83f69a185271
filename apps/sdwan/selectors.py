"""Reads of SDWAN state."""

from __future__ import annotations

from apps.sdwan import wireguard
from apps.sdwan.models import SdwanNetwork, SdwanPeer
from apps.sdwan.services import network_get
from powernode import secretbox


def peer_list(*, network_id: str) -> list[SdwanPeer]:
    network = network_get(network_id=network_id)
    return list(network.peers.order_by("created_at", "overlay_address"))


def hub_config(*, network: SdwanNetwork, listen_port: int | None = None) -> str:
    """The hub interface's wg config for a network: every peer with a known key."""
    peers = [
        (p.public_key, p.overlay_address)
        for p in network.peers.exclude(kind=SdwanPeer.Kind.PLATFORM).exclude(public_key="")
    ]
    return wireguard.render_hub_config(
        private_key=secretbox.decrypt(network.hub_private_key_encrypted), listen_port=listen_port, peers=peers
    )
