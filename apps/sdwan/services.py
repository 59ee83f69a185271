"""Writes for SDWAN networks, peers and device access grants."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from apps.events.models import Event
from apps.events.services import event_record
from apps.nodes.models import NodeInstance
from apps.nodes.services import instance_get
from apps.sdwan import addressing, kinds, wireguard
from apps.sdwan.models import AccessGrant, HubToken, SdwanNetwork, SdwanPeer
from powernode import runtimes, tokens
from powernode.actors import Actor
from powernode.errors import (
    AlreadyAttachedError,
    ConflictError,
    HubNotReadyError,
    NotFound,
    PeerInUseError,
    PeerKeyConflictError,
)

HUB_INDEX = 1
FIRST_HUB_PORT = 51820


@dataclass(frozen=True)
class CreatedGrant:
    grant: AccessGrant
    wireguard_config: str  # holds the device's private key: returned once, never stored


def network_get(*, network_id: str) -> SdwanNetwork:
    try:
        return SdwanNetwork.objects.get(pk=network_id)
    except SdwanNetwork.DoesNotExist:
        raise NotFound(f"No SDWAN network with id {network_id}.", details={"network_id": str(network_id)})


@transaction.atomic
def network_create(*, name: str, prefix: str | None = None, hub_endpoint: str = "", actor: Actor) -> SdwanNetwork:
    hub_endpoint = wireguard.check_endpoint(hub_endpoint)  # it goes into every device's wg-quick config
    if SdwanNetwork.objects.filter(name=name).exists():
        raise ConflictError(f"An SDWAN network named {name!r} already exists.", details={"name": name})
    existing = [addressing.parse_prefix(p) for p in SdwanNetwork.objects.values_list("prefix", flat=True)]
    if prefix:
        net = addressing.parse_prefix(prefix)
        clash = next((e for e in existing if e.overlaps(net)), None)
        if clash:
            raise ConflictError(
                f"prefix {net} overlaps the existing network prefix {clash}.",
                details={"prefix": str(net), "overlaps": str(clash)},
            )
    else:
        net = addressing.random_ula_64()
        while any(e.overlaps(net) for e in existing):
            net = addressing.random_ula_64()
    # no key is made here: the hub makes its own per network and reports the public key (hub_sync)
    network = SdwanNetwork(
        name=name,
        prefix=str(net),
        hub_endpoint=hub_endpoint,
        hub_public_key="",
        hub_listen_port=_hub_listen_port(hub_endpoint),
    )
    network.full_clean(validate_unique=False)
    try:
        with transaction.atomic():
            network.save()
    except IntegrityError:  # a concurrent create took the name, prefix or port
        raise ConflictError(
            f"Another SDWAN network was created meanwhile with the name {name!r}, the prefix {net} or the hub "
            f"port {network.hub_listen_port}; try again.",
            details={"name": name, "prefix": str(net), "hub_listen_port": network.hub_listen_port},
        )
    SdwanPeer.objects.create(
        network=network,
        kind=SdwanPeer.Kind.PLATFORM,
        device_name="hub",
        overlay_address=addressing.address_at(network.prefix, HUB_INDEX),
        public_key="",
    )
    event_record(
        kind=kinds.NETWORK_CREATED,
        actor=actor,
        data={
            "network_id": str(network.id),
            "name": name,
            "prefix": network.prefix,
            "hub_listen_port": network.hub_listen_port,
        },
    )
    return network


def _hub_listen_port(hub_endpoint: str) -> int:
    """The UDP port of the network's hub interface: the endpoint's port when one is given (devices dial it),
    else the lowest port from 51820 no other network uses. One hub serves every network, so ports are unique."""
    taken = set(SdwanNetwork.objects.values_list("hub_listen_port", flat=True))
    if hub_endpoint:
        port = int(hub_endpoint.rsplit(":", 1)[1])
        if port in taken:
            other = SdwanNetwork.objects.filter(hub_listen_port=port).values_list("name", flat=True).first()
            raise ConflictError(
                f"The hub already listens on UDP port {port} for network {other!r}: one hub serves every "
                "network, each on its own port. Give this network's hub_endpoint another port.",
                details={"hub_endpoint": hub_endpoint, "hub_listen_port": port, "network": other},
            )
        return port
    port = FIRST_HUB_PORT
    while port in taken:
        port += 1
    if port > 65535:
        raise ConflictError("No free UDP port left for another hub interface.", details={"from": FIRST_HUB_PORT})
    return port


def _allocate_address(network_id) -> str:  # noqa: ANN001
    """Take the network's next offset. The UPDATE locks the row, so concurrent attaches queue here."""
    SdwanNetwork.objects.filter(pk=network_id).update(next_host_index=F("next_host_index") + 1)
    network = SdwanNetwork.objects.select_for_update().get(pk=network_id)
    return addressing.address_at(network.prefix, network.next_host_index - 1)


@transaction.atomic
def peer_attach(*, network_id: str, node_instance_id: str, actor: Actor) -> SdwanPeer:
    """Give the instance the next free /128 on the network. Attaching twice is a 409 and changes nothing."""
    network = network_get(network_id=network_id)
    instance = instance_get(instance_id=node_instance_id)
    if SdwanPeer.objects.filter(network=network, node_instance=instance).exists():
        raise AlreadyAttachedError(
            f"Instance {instance.name} is already a peer of network {network.name}.",
            details={"network_id": str(network.id), "node_instance_id": str(instance.id)},
        )
    address = _allocate_address(network.id)
    try:
        with transaction.atomic():
            peer = SdwanPeer.objects.create(
                network=network,
                kind=SdwanPeer.Kind.INSTANCE,
                node_instance=instance,
                overlay_address=address,
                public_key=instance.wireguard_public_key,
                # the key the agent reported before the attach is this peer's first key
                pinned_public_key=instance.wireguard_public_key,
            )
    except IntegrityError:
        # another attach of the same instance won the race
        raise AlreadyAttachedError(
            f"Instance {instance.name} is already a peer of network {network.name}.",
            details={"network_id": str(network.id), "node_instance_id": str(instance.id)},
        )
    event_record(
        kind=kinds.PEER_ATTACHED,
        actor=actor,
        instance_id=instance.id,
        data={"network_id": str(network.id), "peer_id": str(peer.id), "overlay_address": address},
    )
    return peer


@transaction.atomic
def access_grant_create(*, network_id: str, device_name_hint: str, actor: Actor) -> CreatedGrant:
    """A device peer with a fresh WireGuard key; the config (with the private key) is returned once."""
    network = network_get(network_id=network_id)
    if not network.hub_public_key:
        raise HubNotReadyError(
            f"The hub of network {network.name} has not reported its WireGuard key yet, so there is no key to "
            "put in a device's config. Run the hub (`powernode-agent hub run` with a hub token from "
            "system_sdwan_create_hub_token, see docs/runbooks/hub.md) and try again once it has synced.",
            details={"network_id": str(network.id)},
        )
    keys = wireguard.generate_keypair()
    address = _allocate_address(network.id)
    peer = SdwanPeer.objects.create(
        network=network,
        kind=SdwanPeer.Kind.DEVICE,
        device_name=device_name_hint,
        overlay_address=address,
        public_key=keys.public_key,
    )
    grant = AccessGrant.objects.create(
        network=network,
        peer=peer,
        device_name_hint=device_name_hint,
        hub_public_key=network.hub_public_key,
        created_by=actor.user,
    )
    config = wireguard.render_client_config(
        private_key=keys.private_key,
        address=address,
        hub_public_key=network.hub_public_key,
        hub_endpoint=network.hub_endpoint,
        allowed_ips=network.prefix,
    )
    event_record(
        kind=kinds.ACCESS_GRANT_CREATED,
        actor=actor,
        data={
            "network_id": str(network.id),
            "grant_id": str(grant.id),
            "peer_id": str(peer.id),
            "device_name_hint": device_name_hint,
            "overlay_address": address,
        },
    )
    return CreatedGrant(grant=grant, wireguard_config=config)


def access_grant_get(*, grant_id: str) -> AccessGrant:
    try:
        return AccessGrant.objects.select_related("peer", "network").get(pk=grant_id)
    except AccessGrant.DoesNotExist:
        raise NotFound(f"No access grant with id {grant_id}.", details={"grant_id": str(grant_id)})


@transaction.atomic
def access_grant_revoke(*, grant_id: str, actor: Actor) -> AccessGrant:
    """Revoke a device's access: the hub config leaves its peer out from now on.

    The device peer row stays (with its /128 and public key) as the record of what was granted: its
    address is never handed out again (offsets only grow) and its key stays known, so neither can come
    back under another grant. Revoking an already revoked grant is a no-op (no second event).
    """
    grant = access_grant_get(grant_id=grant_id)
    updated = AccessGrant.objects.filter(pk=grant.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    grant.refresh_from_db()
    if updated:
        event_record(
            kind=kinds.ACCESS_GRANT_REVOKED,
            actor=actor,
            data={
                "network_id": str(grant.network_id),
                "grant_id": str(grant.id),
                "peer_id": str(grant.peer_id),
                "device_name_hint": grant.device_name_hint,
                "overlay_address": grant.peer.overlay_address,
            },
        )
    return grant


def instance_record_wireguard_key(*, instance, public_key: str) -> None:  # noqa: ANN001
    """The agent reported its WireGuard public key: keep it on the instance and its peers, pinning it.

    The first key reported for a peer is pinned. A different key later, or a key another peer, instance
    or hub holds, is refused (``PeerKeyConflictError``, 409, event ``peer.key_refused``) and changes
    nothing, until an operator clears the pin with ``peer_reset_key``.
    """
    public_key = wireguard.check_public_key(public_key)
    refusal = _record_key(instance=instance, public_key=public_key)
    if refusal is not None:
        _refuse_key(instance=instance, public_key=public_key, refusal=refusal)


@transaction.atomic
def _record_key(*, instance, public_key: str) -> dict | None:  # noqa: ANN001
    """Write the key (instance, peers, pins) or return why it is refused, having written nothing."""
    peers = list(SdwanPeer.objects.select_for_update().filter(node_instance=instance))
    if _key_held_elsewhere(instance=instance, public_key=public_key):
        return {"reason": "in_use"}
    pinned_elsewhere = [p for p in peers if p.pinned_public_key and p.pinned_public_key != public_key]
    if pinned_elsewhere:
        return {"reason": "pinned", "peer_ids": [str(p.id) for p in pinned_elsewhere]}
    unpinned = [p for p in peers if p.pinned_public_key != public_key or p.public_key != public_key]
    if instance.wireguard_public_key == public_key and not unpinned:
        return None
    type(instance).objects.filter(pk=instance.pk).update(wireguard_public_key=public_key)
    instance.wireguard_public_key = public_key
    SdwanPeer.objects.filter(pk__in=[p.pk for p in unpinned]).update(
        public_key=public_key, pinned_public_key=public_key
    )
    event_record(
        kind=kinds.PEER_KEY_REPORTED,
        instance_id=instance.id,
        data={"public_key": public_key, "pinned_peer_ids": [str(p.id) for p in unpinned]},
    )
    return None


def _key_held_elsewhere(*, instance, public_key: str) -> bool:  # noqa: ANN001
    """Another peer (instance, device or hub peer), another instance or a network's hub holds the key."""
    if SdwanNetwork.objects.filter(hub_public_key=public_key).exists():
        return True
    if (
        SdwanPeer.objects.filter(Q(public_key=public_key) | Q(pinned_public_key=public_key))
        .exclude(node_instance_id=instance.pk)
        .exists()
    ):
        return True
    return type(instance).objects.filter(wireguard_public_key=public_key).exclude(pk=instance.pk).exists()


def _refuse_key(*, instance, public_key: str, refusal: dict) -> None:  # noqa: ANN001
    """Record the refusal (once per key and reason in a row: an agent retries every few seconds), raise 409."""
    with transaction.atomic():
        last = (
            Event.objects.filter(kind=kinds.PEER_KEY_REFUSED, instance_id=instance.id)
            .order_by("-occurred_at")
            .values_list("data", flat=True)
            .first()
        )
        data = {"public_key": public_key, **refusal}
        if last != data:
            event_record(kind=kinds.PEER_KEY_REFUSED, instance_id=instance.id, data=data)
    if refusal["reason"] == "in_use":
        message = (
            "This WireGuard public key is already used by another peer or by a hub: every peer needs its own "
            "key. Generate a new key on the instance."
        )
    else:
        message = (
            "This WireGuard public key differs from the key pinned for the instance's peer(s): a changed key "
            "is refused until an operator runs system_sdwan_reset_peer_key for each peer listed in details."
        )
    raise PeerKeyConflictError(message, details={"instance_id": str(instance.id), **refusal})


@transaction.atomic
def peer_reset_key(*, peer_id: str, actor: Actor) -> SdwanPeer:
    """Clear an instance peer's pinned WireGuard key: the next key its agent reports is accepted and pinned.

    The instance's recorded key is cleared too, so that its next heartbeat (even with the same key) takes
    the recording path and pins again. The peer keeps its current key until then: the tunnel stays up.
    """
    peer = SdwanPeer.objects.select_for_update().filter(pk=peer_id).first()
    if peer is None:
        raise NotFound(f"No SDWAN peer with id {peer_id}.", details={"peer_id": str(peer_id)})
    if peer.kind != SdwanPeer.Kind.INSTANCE:
        raise ConflictError(
            f"Peer {peer_id} is a {peer.kind} peer: only an instance's peer has a key reported by an agent.",
            details={"peer_id": str(peer.id), "kind": peer.kind},
        )
    previous = peer.pinned_public_key
    peer.pinned_public_key = ""
    peer.save(update_fields=["pinned_public_key"])
    NodeInstance.objects.filter(pk=peer.node_instance_id).update(wireguard_public_key="")
    event_record(
        kind=kinds.PEER_KEY_RESET,
        actor=actor,
        instance_id=peer.node_instance_id,
        data={"peer_id": str(peer.id), "network_id": str(peer.network_id), "previous_pinned_key": previous},
    )
    return peer


@transaction.atomic
def peer_detach(*, network_id: str, node_instance_id: str, actor: Actor) -> SdwanPeer:
    """Remove an instance's peer from a network; the hub drops it on its next sync.

    Its /128 is never handed out again (offsets only grow). Refused (409 ``PeerInUseError``, nothing
    changed) while a runtime still binds to that /128, e.g. a docker host that is not decommissioned.
    """
    network = network_get(network_id=network_id)
    instance = instance_get(instance_id=node_instance_id)
    peer = SdwanPeer.objects.select_for_update().filter(network=network, node_instance=instance).first()
    if peer is None:
        raise NotFound(
            f"Instance {instance.name} is not a peer of network {network.name}.",
            details={"network_id": str(network.id), "node_instance_id": str(instance.id)},
        )
    users = runtimes.peer_users(instance_id=instance.id, overlay_address=peer.overlay_address)
    if users:
        raise PeerInUseError(
            f"{peer.overlay_address} of instance {instance.name} is still bound by a runtime: decommission it "
            "first (system_decommission_docker_runtime), then detach.",
            details={"network_id": str(network.id), "node_instance_id": str(instance.id), "in_use_by": users},
        )
    detached = SdwanPeer.objects.get(pk=peer.pk)  # what is returned: the row as it was
    peer.delete()
    event_record(
        kind=kinds.PEER_DETACHED,
        actor=actor,
        instance_id=instance.id,
        data={
            "network_id": str(network.id),
            "peer_id": str(detached.id),
            "overlay_address": detached.overlay_address,
            "public_key": detached.public_key,
        },
    )
    return detached


# -- hub tokens ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CreatedHubToken:
    row: HubToken
    token: str  # pnh_...: returned once, only its hash is stored


@transaction.atomic
def hub_token_create(*, name: str, actor: Actor) -> CreatedHubToken:
    if HubToken.objects.filter(name=name).exists():
        raise ConflictError(f"A hub token named {name!r} already exists.", details={"name": name})
    new = tokens.make_token(tokens.HUB)
    try:
        with transaction.atomic():
            row = HubToken.objects.create(
                name=name, prefix=new.prefix, token_hash=new.token_hash, created_by=actor.user
            )
    except IntegrityError:
        raise ConflictError(f"A hub token named {name!r} already exists.", details={"name": name})
    event_record(
        kind=kinds.HUB_TOKEN_CREATED,
        actor=actor,
        data={"hub_token_id": str(row.id), "name": name, "prefix": row.prefix},
    )
    return CreatedHubToken(row=row, token=new.token)


def hub_token_get(*, token_id: str) -> HubToken:
    try:
        return HubToken.objects.get(pk=token_id)
    except HubToken.DoesNotExist:
        raise NotFound(f"No hub token with id {token_id}.", details={"token_id": str(token_id)})


@transaction.atomic
def hub_token_revoke(*, token_id: str, actor: Actor) -> HubToken:
    """The hub using this token gets 401 from now on. Revoking again changes nothing (no second event)."""
    row = hub_token_get(token_id=token_id)
    if HubToken.objects.filter(pk=row.pk, revoked_at__isnull=True).update(revoked_at=timezone.now()):
        row.refresh_from_db()
        event_record(
            kind=kinds.HUB_TOKEN_REVOKED,
            actor=actor,
            data={"hub_token_id": str(row.id), "name": row.name, "prefix": row.prefix},
        )
    return row


def hub_token_touch(*, row: HubToken) -> None:
    """Record that the token was used, at most once a minute (it authenticates every few seconds)."""
    now = timezone.now()
    if row.last_used_at is None or (now - row.last_used_at).total_seconds() > 60:
        HubToken.objects.filter(pk=row.pk).update(last_used_at=now)
        row.last_used_at = now


# -- the hub's sync --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportedPeer:
    public_key: str
    latest_handshake: int  # unix seconds, 0: never
    rx_bytes: int
    tx_bytes: int


@dataclass(frozen=True)
class ReportedNetwork:
    network_id: str
    public_key: str
    peers: list[ReportedPeer]


@transaction.atomic
def hub_sync(
    *,
    token: HubToken,
    hub_version: str,
    applied_version: str | None = None,
    networks: list[ReportedNetwork] | None = None,
) -> None:
    """Record what a hub reports, all or nothing: its key per network (a new one re-keys the network), each
    known peer's tunnel (handshake, counters; only rows that changed), its version and what it applied.

    Networks and peer keys the platform does not know (deleted meanwhile) are ignored. A key another peer,
    instance or network holds refuses the whole report (409 ``PeerKeyConflictError``), nothing written.
    Queries are bounded whatever the number of peers: a few reads, one bulk write per 500 changed peers.
    """
    actor = Actor.for_hub(token.name)
    reported = {r.network_id: r for r in networks or []}
    known = {str(n.id): n for n in SdwanNetwork.objects.filter(pk__in=list(reported)).only("id", "hub_public_key")}
    rekeyed = [i for i, n in known.items() if reported[i].public_key != n.hub_public_key]
    if rekeyed:  # locked only then: a sync every 2 s must not queue behind (or hold up) attaches
        locked = SdwanNetwork.objects.select_for_update().filter(pk__in=rekeyed).order_by("pk")
        for network in locked:
            if reported[str(network.id)].public_key != network.hub_public_key:
                _hub_rekey(network=network, public_key=reported[str(network.id)].public_key, actor=actor)
    if known:
        _record_tunnels(reports=[r for r in reported.values() if r.network_id in known])
    _record_hub(token=token, hub_version=hub_version, applied_version=applied_version, actor=actor)


def _hub_rekey(*, network: SdwanNetwork, public_key: str, actor: Actor) -> None:
    """The hub holds a new key for the network (first report, or the hub host's keys were remade)."""
    public_key = wireguard.check_public_key(public_key)
    held = (
        SdwanNetwork.objects.filter(hub_public_key=public_key).exclude(pk=network.pk).exists()
        or SdwanPeer.objects.filter(Q(public_key=public_key) | Q(pinned_public_key=public_key))
        .exclude(network=network, kind=SdwanPeer.Kind.PLATFORM)
        .exists()
        or NodeInstance.objects.filter(wireguard_public_key=public_key).exists()
    )
    if held:
        raise PeerKeyConflictError(
            f"The hub reported for network {network.name} a WireGuard key another peer, instance or network "
            "already holds: every peer needs its own key. Remove the hub's key for this network on the hub "
            "host (it makes a new one) and sync again.",
            details={"network_id": str(network.id), "public_key": public_key, "reason": "in_use"},
        )
    previous = network.hub_public_key
    SdwanNetwork.objects.filter(pk=network.pk).update(hub_public_key=public_key)
    network.hub_public_key = public_key
    SdwanPeer.objects.filter(network=network, kind=SdwanPeer.Kind.PLATFORM).update(public_key=public_key)
    stale = (
        AccessGrant.objects.filter(network=network, revoked_at__isnull=True).exclude(hub_public_key=public_key).count()
    )
    event_record(
        kind=kinds.HUB_REKEYED,
        actor=actor,
        data={
            "network_id": str(network.id),
            "previous_public_key": previous,
            "public_key": public_key,
            "stale_access_grants": stale,  # active grants whose config names an old hub key
        },
    )


_TUNNEL_FIELDS = ["last_handshake_at", "rx_bytes", "tx_bytes", "hub_reported_at"]


def _record_tunnels(*, reports: list[ReportedNetwork]) -> None:
    """One read of every (non-hub) peer with a key on the reported networks, one bulk write of those whose
    reported state changed."""
    reported = {
        (r.network_id, p.public_key): p for r in reports for p in r.peers
    }
    if not reported:
        return
    now = timezone.now()
    changed = []
    rows = (
        SdwanPeer.objects.filter(network_id__in=[r.network_id for r in reports])
        .exclude(kind=SdwanPeer.Kind.PLATFORM)
        .exclude(public_key="")
        .only("id", "network_id", "public_key", *_TUNNEL_FIELDS)
    )
    for peer in rows:
        report = reported.get((str(peer.network_id), peer.public_key))
        if report is None:
            continue
        handshake = (
            dt.datetime.fromtimestamp(report.latest_handshake, tz=dt.UTC) if report.latest_handshake else None
        )
        if (
            peer.hub_reported_at is not None
            and peer.last_handshake_at == handshake
            and peer.rx_bytes == report.rx_bytes
            and peer.tx_bytes == report.tx_bytes
        ):
            continue
        peer.last_handshake_at, peer.rx_bytes, peer.tx_bytes = handshake, report.rx_bytes, report.tx_bytes
        peer.hub_reported_at = now
        changed.append(peer)
    if changed:
        SdwanPeer.objects.bulk_update(changed, _TUNNEL_FIELDS, batch_size=500)


def _record_hub(*, token: HubToken, hub_version: str, applied_version: str | None, actor: Actor) -> None:
    updates: dict[str, object] = {}
    if hub_version != token.hub_version:
        updates["hub_version"] = hub_version
    if applied_version and applied_version != token.applied_version:
        updates.update(applied_version=applied_version, applied_at=timezone.now())
        event_record(
            kind=kinds.HUB_APPLIED,
            actor=actor,
            data={
                "hub_token_id": str(token.id),
                "hub_name": token.name,
                "hub_version": hub_version,
                "applied_version": applied_version,
                "previous_applied_version": token.applied_version,
            },
        )
    if updates:
        HubToken.objects.filter(pk=token.pk).update(**updates)
        for field, value in updates.items():
            setattr(token, field, value)
