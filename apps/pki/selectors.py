"""Reads of the CA's records for dashboards and /metrics."""

from __future__ import annotations

from apps.pki.models import VaultKvOutbox


def kv_outbox_pending_count() -> int:
    """Vault KV writes recorded and not yet sent (the outbox's backlog)."""
    return VaultKvOutbox.objects.filter(status=VaultKvOutbox.Status.PENDING).count()
