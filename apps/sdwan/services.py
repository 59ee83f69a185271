"""Writes for SDWAN networks, peers and device access grants."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from apps.events.services import event_record
from apps.nodes.services import instance_get
from apps.sdwan import addressing, kinds, wireguard
from apps.sdwan.models import AccessGrant, SdwanNetwork, SdwanPeer
from powernode import secretbox
from powernode.actors import Actor
from powernode.errors import AlreadyAttachedError, ConflictError, NotFound

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


@transaction.atomic
def instance_record_wireguard_key(*, instance, public_key: str) -> None:  # noqa: ANN001
    """The agent reported its WireGuard public key: keep it on the instance and its peers."""
    public_key = wireguard.check_public_key(public_key)
    if instance.wireguard_public_key == public_key:
        return
    type(instance).objects.filter(pk=instance.pk).update(wireguard_public_key=public_key)
    instance.wireguard_public_key = public_key
    SdwanPeer.objects.filter(node_instance=instance).update(public_key=public_key)
    event_record(kind=kinds.PEER_KEY_REPORTED, instance_id=instance.id, data={"public_key": public_key})

