"""Reads of SDWAN state."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

from django.conf import settings
from django.db.models import OuterRef, QuerySet, Subquery
from django.utils import timezone

from apps.sdwan import addressing
from apps.sdwan.models import AccessGrant, HubToken, SdwanNetwork, SdwanPeer
from apps.sdwan.services import HUB_INDEX, network_get

#: WireGuard re-handshakes every 120 s while there is traffic or a keepalive: older than this is "down"
TUNNEL_UP_WITHIN_S = 180
TUNNEL_STATES = ("up", "down", "unknown")


def peer_list(*, network_id: str) -> list[SdwanPeer]:
    network = network_get(network_id=network_id)
    return list(network.peers.order_by("created_at", "overlay_address"))


def access_grant_list(*, network_id: str) -> list[AccessGrant]:
    network = network_get(network_id=network_id)
    return list(network.access_grants.select_related("peer", "network").order_by("created_at", "id"))


def hub_token_list() -> list[HubToken]:
    return list(HubToken.objects.select_related("created_by").order_by("created_at", "id"))


def _hub_peers() -> QuerySet[SdwanPeer]:
    """Every peer a hub admits: a known key, not the hub itself, not a revoked grant's device."""
    return (
        SdwanPeer.objects.exclude(kind=SdwanPeer.Kind.PLATFORM)
        .exclude(public_key="")
        .exclude(access_grant__revoked_at__isnull=False)
        .order_by("created_at", "overlay_address")
    )


def hub_peers(*, network: SdwanNetwork) -> list[SdwanPeer]:
    """The peers the hub admits on a network: every peer with a known key, except the hub itself and the
    device peers of revoked access grants (detached peers are gone)."""
    return list(_hub_peers().filter(network=network))


def hub_desired_state() -> dict[str, Any]:
    """What every hub should run (``POST /api/v1/hub/sync``): all networks by name, each with its hub peers
    (by creation), and ``desired_version``, a hash of exactly that. Two queries whatever the size."""
    peers: dict[Any, list[dict[str, Any]]] = {}
    for network_id, public_key, address in _hub_peers().values_list("network_id", "public_key", "overlay_address"):
        peers.setdefault(network_id, []).append({"public_key": public_key, "allowed_ips": [f"{address}/128"]})
    networks = [
        {
            "network_id": str(n.id),
            "name": n.name,
            "prefix": n.prefix,
            "hub_address": addressing.address_at(n.prefix, HUB_INDEX),
            "listen_port": n.hub_listen_port,
            "public_key": n.hub_public_key,
            "peers": peers.get(n.id, []),
        }
        for n in SdwanNetwork.objects.order_by("name").only(
            "id", "name", "prefix", "hub_listen_port", "hub_public_key"
        )
    ]
    canonical = json.dumps(networks, sort_keys=True, separators=(",", ":"))
    return {
        "desired_version": hashlib.sha256(canonical.encode()).hexdigest(),
        "poll_interval_s": settings.POWERNODE_HUB_POLL_INTERVAL_S,
        "networks": networks,
    }


def tunnel_state(
    *, last_handshake_at: dt.datetime | None, hub_reported_at: dt.datetime | None, now: dt.datetime | None = None
) -> str:
    """"up" (a handshake within 180 s), "down", or "unknown" (no hub has reported this peer)."""
    if hub_reported_at is None:
        return "unknown"
    if last_handshake_at is None:
        return "down"
    age = ((now or timezone.now()) - last_handshake_at).total_seconds()
    return "up" if age <= TUNNEL_UP_WITHIN_S else "down"


def peer_tunnel(peer: SdwanPeer) -> str:
    return tunnel_state(last_handshake_at=peer.last_handshake_at, hub_reported_at=peer.hub_reported_at)


def tunnel_for(*, instance_id: Any, overlay_address: str) -> dict[str, Any]:
    """The tunnel of the instance's peer holding ``overlay_address`` (a docker host's /128):
    ``{tunnel, last_handshake_at}``; "unknown" when no such peer (e.g. detached)."""
    row = (
        SdwanPeer.objects.filter(node_instance_id=instance_id, overlay_address=overlay_address)
        .values("last_handshake_at", "hub_reported_at")
        .first()
    )
    if row is None:
        return {"tunnel": "unknown", "last_handshake_at": None}
    return {"tunnel": tunnel_state(**row), "last_handshake_at": row["last_handshake_at"]}


def tunnel_annotations(*, instance_field: str, address_field: str) -> dict[str, Subquery]:
    """Annotations for a queryset of rows naming an instance and a /128 (docker hosts): the peer's
    ``peer_last_handshake_at`` and ``peer_hub_reported_at``, for ``tunnel_state`` without a query per row."""
    peer = SdwanPeer.objects.filter(node_instance_id=OuterRef(instance_field), overlay_address=OuterRef(address_field))
    return {
        "peer_last_handshake_at": Subquery(peer.values("last_handshake_at")[:1]),
        "peer_hub_reported_at": Subquery(peer.values("hub_reported_at")[:1]),
    }
