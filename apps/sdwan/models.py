"""SdwanNetwork, SdwanPeer and AccessGrant."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from apps.nodes.models import NodeInstance
from apps.sdwan.wireguard import validate_hub_endpoint
from powernode.ids import uuid7


class SdwanNetwork(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    name = models.CharField(max_length=100, unique=True)
    prefix = models.CharField(max_length=64, unique=True, help_text="IPv6 ULA prefix, e.g. fd00:abcd:1::/64")
    hub_endpoint = models.CharField(
        max_length=255,
        blank=True,
        default="",
        validators=[validate_hub_endpoint],
        help_text="host:port of the hub, e.g. hub.example.org:51820 or [fd00::1]:51820",
    )
    hub_public_key = models.CharField(
        max_length=60,
        blank=True,
        default="",
        help_text="the hub's WireGuard public key for this network, as the hub reported it (its private key "
        "never leaves the hub host); empty until the hub's first sync",
    )
    hub_listen_port = models.PositiveIntegerField(
        unique=True, help_text="UDP port of the hub's WireGuard interface for this network"
    )
    next_host_index = models.BigIntegerField(
        default=2, help_text="next address offset to hand out (::1 is the hub); never reused"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix})"


class SdwanPeer(models.Model):
    class Kind(models.TextChoices):
        INSTANCE = "instance"
        DEVICE = "device"
        PLATFORM = "platform"

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    network = models.ForeignKey(SdwanNetwork, on_delete=models.CASCADE, related_name="peers")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    node_instance = models.ForeignKey(
        NodeInstance, null=True, blank=True, on_delete=models.CASCADE, related_name="sdwan_peers"
    )
    device_name = models.CharField(max_length=100, blank=True, default="")
    overlay_address = models.GenericIPAddressField(protocol="IPv6")
    public_key = models.CharField(max_length=60, blank=True, default="", help_text="WireGuard public key")
    pinned_public_key = models.CharField(
        max_length=60,
        blank=True,
        default="",
        help_text="the first WireGuard key the agent reported for this peer; another key is refused until an "
        "operator clears this (system_sdwan_reset_peer_key)",
    )
    created_at = models.DateTimeField(default=timezone.now)
    # the tunnel as the hub last reported it (POST /api/v1/hub/sync)
    last_handshake_at = models.DateTimeField(null=True, blank=True, help_text="latest WireGuard handshake with the hub")
    rx_bytes = models.BigIntegerField(default=0, help_text="bytes the hub received from this peer")
    tx_bytes = models.BigIntegerField(default=0, help_text="bytes the hub sent to this peer")
    hub_reported_at = models.DateTimeField(
        null=True, blank=True, help_text="when a hub last reported a change of this peer's tunnel (empty: never)"
    )

    class Meta:
        ordering = ["network", "created_at"]
        constraints = [
            models.UniqueConstraint(fields=["network", "overlay_address"], name="peer_overlay_unique_in_network"),
            models.UniqueConstraint(
                fields=["network", "node_instance"],
                condition=Q(node_instance__isnull=False),
                name="peer_instance_once_per_network",
            ),
        ]

    def __str__(self) -> str:
        who = self.node_instance.name if self.node_instance_id else (self.device_name or self.kind)
        return f"{who} {self.overlay_address}"


class AccessGrant(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    network = models.ForeignKey(SdwanNetwork, on_delete=models.CASCADE, related_name="access_grants")
    peer = models.OneToOneField(SdwanPeer, on_delete=models.CASCADE, related_name="access_grant")
    device_name_hint = models.CharField(max_length=100)
    hub_public_key = models.CharField(
        max_length=60, blank=True, default="", help_text="the hub key the grant's wg-quick config names"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.device_name_hint} on {self.network.name}"

    @property
    def hub_key_current(self) -> bool:
        """The config still names the network's hub key (false once the hub re-keyed: a new grant is needed)."""
        return bool(self.hub_public_key) and self.hub_public_key == self.network.hub_public_key


class HubToken(models.Model):
    """A ``pnh_`` Bearer token a hub (``powernode-agent hub``) authenticates with; stored hashed."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    name = models.CharField(max_length=100, unique=True)
    prefix = models.CharField(max_length=12, unique=True, help_text="finds the token; the hash proves it")
    token_hash = models.CharField(max_length=64)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True, help_text="updated at most once a minute")
    revoked_at = models.DateTimeField(null=True, blank=True)
    hub_version = models.CharField(max_length=40, blank=True, default="", help_text="as the hub last reported it")
    applied_version = models.CharField(
        max_length=128, blank=True, default="", help_text="the desired_version the hub last reported applied"
    )
    applied_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"{self.name} (pnh_{self.prefix}_…)"
