"""DockerHost: a managed dockerd on a node instance, bound to the instance's overlay /128 with mutual TLS."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone

from apps.nodes.models import NodeInstance
from apps.sdwan.models import SdwanNetwork
from powernode.ids import uuid7

DOCKER_TLS_PORT = 2376


def new_host_id() -> str:
    return f"host-{uuid7()}"


def api_endpoint_for(overlay_address: str) -> str:
    return f"tcp://[{overlay_address}]:{DOCKER_TLS_PORT}"


class DockerHost(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "pending (certificate issued, daemon not reported ready)"
        CONNECTED = "connected", "connected"
        UNREACHABLE = "unreachable", "unreachable (the platform's probe got no answer from the daemon)"
        DECOMMISSIONING = "decommissioning", "decommissioning (order sent to the agent)"
        DECOMMISSIONED = "decommissioned", "decommissioned"
        FAILED = "failed", "failed (the agent reported an error)"

    # A host that still answers to the handshake; at most one per instance (see the constraint).
    LIVE_STATUSES = (Status.PENDING, Status.CONNECTED, Status.UNREACHABLE, Status.DECOMMISSIONING, Status.FAILED)

    id = models.CharField(primary_key=True, max_length=64, default=new_host_id, editable=False)
    node_instance = models.ForeignKey(NodeInstance, on_delete=models.PROTECT, related_name="docker_hosts")
    network = models.ForeignKey(SdwanNetwork, on_delete=models.PROTECT, related_name="docker_hosts")
    overlay_address = models.GenericIPAddressField(protocol="IPv6", help_text="the /128 dockerd binds to")
    api_endpoint = models.CharField(max_length=100, help_text="tcp://[overlay /128]:2376")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING, db_index=True)
    version = models.CharField(max_length=40, blank=True, default="", help_text="engine version from ready")
    api_version = models.CharField(
        max_length=10, blank=True, default="", help_text="Docker API version the platform negotiated with dockerd"
    )

    # when each phase was last reached
    cert_signed_at = models.DateTimeField(null=True, blank=True)
    config_sent_at = models.DateTimeField(null=True, blank=True)
    connected_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    decommission_requested_at = models.DateTimeField(null=True, blank=True)
    decommissioned_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")

    # the daemon's current server certificate (older ones stay recorded in pki's IssuedCertificate)
    server_cert_serial = models.CharField(max_length=100, blank=True, default="")
    server_cert_not_after = models.DateTimeField(null=True, blank=True)

    # the platform's own client keypair for this host; the row is the source of truth on the read path
    client_cert_serial = models.CharField(max_length=100, blank=True, default="")
    client_cert_pem = models.TextField(blank=True, default="")
    client_key_encrypted = models.TextField(blank=True, default="", help_text="PKCS#8 PEM, encrypted at rest")
    client_chain_pem = models.TextField(blank=True, default="")
    client_cert_not_after = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # Two concurrent wants_cert for one instance must end with one host: the database says no
            # to the second even if the row lock were skipped.
            models.UniqueConstraint(
                fields=["node_instance"],
                condition=~Q(status="decommissioned"),
                name="docker_host_one_live_per_instance",
            ),
        ]
        indexes = [models.Index(fields=["node_instance", "-created_at"], name="docker_host_instance_idx")]

    def __str__(self) -> str:
        return f"{self.id} ({self.status})"

    @property
    def has_certificate(self) -> bool:
        return bool(self.server_cert_serial)


class RegistryCredential(models.Model):
    """A registry login the platform sends with pulls from that registry (``docker_set_registry_credentials``).

    The password is encrypted at rest (``powernode.secretbox``) and never leaves the platform except in
    the X-Registry-Auth header of a pull to a managed dockerd.
    """

    registry = models.CharField(max_length=255, unique=True, help_text="host[:port], e.g. registry.lab:5000")
    username = models.CharField(max_length=255)
    password_encrypted = models.TextField(help_text="encrypted at rest; never shown")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["registry"]

    def __str__(self) -> str:
        return f"{self.username}@{self.registry}"
