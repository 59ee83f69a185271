"""Writes for SDWAN networks, peers and device access grants."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from apps.events.models import Event
from apps.events.services import event_record
from apps.nodes.models import NodeInstance
from apps.nodes.services import instance_get
from apps.sdwan import addressing, kinds, wireguard
from apps.sdwan.models import AccessGrant, SdwanNetwork, SdwanPeer
from powernode import secretbox
from powernode.actors import Actor
from powernode.errors import AlreadyAttachedError, ConflictError, NotFound, PeerKeyConflictError

HUB_INDEX = 1


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
    hub = wireguard.generate_keypair()
    network = SdwanNetwork(
        name=name,
        prefix=str(net),
        hub_endpoint=hub_endpoint,
        hub_public_key=hub.public_key,
        hub_private_key_encrypted=secretbox.encrypt(hub.private_key),
    )
    network.full_clean()
    network.save()
    SdwanPeer.objects.create(
        network=network,
        kind=SdwanPeer.Kind.PLATFORM,
        device_name="hub",
        overlay_address=addressing.address_at(network.prefix, HUB_INDEX),
        public_key=hub.public_key,
    )
    event_record(
        kind=kinds.NETWORK_CREATED,
        actor=actor,
        data={"network_id": str(network.id), "name": name, "prefix": network.prefix},
    )
    return network


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
        network=network, peer=peer, device_name_hint=device_name_hint, created_by=actor.user
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
