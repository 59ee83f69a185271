"""Reads of SDWAN state."""

from __future__ import annotations

from apps.sdwan.models import SdwanPeer
from apps.sdwan.services import network_get


def peer_list(*, network_id: str) -> list[SdwanPeer]:
    network = network_get(network_id=network_id)
    return list(network.peers.order_by("created_at", "overlay_address"))
