"""IssuedCertificate (every certificate the platform's CA issued) and VaultKvOutbox (pending KV writes)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from powernode.ids import uuid7


class IssuedCertificate(models.Model):
    class Kind(models.TextChoices):
        SERVER = "server", "docker host server"
        PLATFORM_CLIENT = "platform_client", "platform client (for one host)"
        OPERATOR_CLIENT = "operator_client", "operator export"
        REGISTRY_SERVER = "registry_server", "image registry server"

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    serial = models.CharField(
        max_length=128, unique=True, help_text="lowercase colon hex, as Vault writes it"
    )
    kind = models.CharField(max_length=30, choices=Kind.choices)
    common_name = models.CharField(max_length=255)
    sans = models.JSONField(default=list, blank=True, help_text="IP SANs (the overlay /128 for servers)")
    not_before = models.DateTimeField()
    not_after = models.DateTimeField()
    # DockerHost ids look like host-<uuid>; no FK so the CA record outlives (and predates) the host row.
    host_id = models.CharField(max_length=64, blank=True, default="", db_index=True)
    operator = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    adapter = models.CharField(max_length=40, help_text="LocalCaAdapter or VaultCaAdapter")
    cert_pem = models.TextField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    revocation_reason = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["kind", "revoked_at"], name="pki_cert_kind_revoked")]

    def __str__(self) -> str:
        return f"{self.kind} {self.common_name} ({self.serial[:23]}…)"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None


class VaultKvOutbox(models.Model):
    """One Vault KV v2 write, recorded in the writer's transaction, sent after commit, retried until done."""

    class Status(models.TextChoices):
        PENDING = "pending"
        DONE = "done"
        SKIPPED = "skipped", "skipped (Vault not configured)"

    class Operation(models.TextChoices):
        WRITE = "write", "write a new version"
        DESTROY = "destroy", "destroy every version and the metadata"

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    operation = models.CharField(max_length=10, choices=Operation.choices, default=Operation.WRITE)
    path = models.CharField(
        max_length=255, help_text="path under the KV mount, e.g. powernode/hosts/HOST_ID/..."
    )
    payload_encrypted = models.TextField(
        blank=True, default="", help_text="JSON, encrypted; cleared once written"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]
        verbose_name = "Vault KV outbox entry"
        verbose_name_plural = "Vault KV outbox"

    def __str__(self) -> str:
        return f"{self.path} ({self.status})"
