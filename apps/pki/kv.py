"""Vault KV v2: the hvac adapter and the after-commit outbox that makes every secret write eventually land.

``kv_write_after_commit`` records the write in the caller's transaction (so a crash after commit loses
nothing) and sends pending writes, oldest first, once the transaction commits; ``vault_sync`` (and every
later write) retries what failed. Reads never come from here: the DB mirror is the source of truth.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import hvac
import hvac.exceptions
import requests
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.pki.models import VaultKvOutbox
from powernode import secretbox
from powernode.errors import VaultUnavailableError

log = logging.getLogger(__name__)

NOT_CONFIGURED = "Vault not configured (VAULT_ADDR / VAULT_TOKEN unset): kept in the database only."


class VaultKvAdapter:
    """Write and read secrets under ``{mount}/data/{path}``; hvac errors become ``VaultUnavailableError``."""

    def __init__(self, url: str, token: str, *, mount: str = "secret", timeout: float = 10.0) -> None:
        session = requests.Session()
        session.trust_env = False  # no proxy or CA-bundle variables for the platform's own Vault
        self.mount = mount
        self.client = hvac.Client(url=url.rstrip("/"), token=token, timeout=timeout, session=session)

    def write(self, path: str, data: dict[str, Any]) -> int:
        """Write a new version; return its version number."""
        try:
            response = self.client.secrets.kv.v2.create_or_update_secret(
                path=path, secret=data, mount_point=self.mount
            )
        except (hvac.exceptions.VaultError, requests.RequestException, OSError, ValueError) as exc:
            raise VaultUnavailableError(
                f"Vault KV write to {self.mount}/{path} failed: {exc}",
                details={"path": path, "error_type": type(exc).__name__},
            ) from None
        return int((response.get("data") or {}).get("version") or 0)

    def destroy(self, path: str) -> None:
        """Remove every version and the metadata of ``path`` (KV v2 keeps old versions otherwise)."""
        try:
            self.client.secrets.kv.v2.delete_metadata_and_all_versions(path=path, mount_point=self.mount)
        except hvac.exceptions.InvalidPath:
            return
        except (hvac.exceptions.VaultError, requests.RequestException, OSError, ValueError) as exc:
            raise VaultUnavailableError(
                f"Vault KV destroy of {self.mount}/{path} failed: {exc}",
                details={"path": path, "error_type": type(exc).__name__},
            ) from None

    def read(self, path: str) -> dict[str, Any] | None:
        """The latest version's data, or None when the path does not exist."""
        try:
            response = self.client.secrets.kv.v2.read_secret_version(
                path=path, mount_point=self.mount, raise_on_deleted_version=True
            )
        except hvac.exceptions.InvalidPath:
            return None
        except (hvac.exceptions.VaultError, requests.RequestException, OSError, ValueError) as exc:
            raise VaultUnavailableError(f"Vault KV read of {self.mount}/{path} failed: {exc}") from None
        return response["data"]["data"]


def kv_configured() -> bool:
    return bool(getattr(settings, "VAULT_ADDR", "") and getattr(settings, "VAULT_TOKEN", ""))


def get_kv_adapter() -> VaultKvAdapter | None:
    if not kv_configured():
        return None
    return VaultKvAdapter(
        settings.VAULT_ADDR,
        settings.VAULT_TOKEN,
        mount=getattr(settings, "VAULT_KV_MOUNT", "secret"),
        timeout=float(getattr(settings, "VAULT_TIMEOUT", 10)),
    )


def kv_write_after_commit(*, path: str, data: dict[str, str]) -> VaultKvOutbox:
    """Queue a KV v2 write of ``data`` at ``path`` (under settings.VAULT_KV_MOUNT) for after commit.

    Call inside the transaction that stores the DB copy. The outbox row is written now, in that
    transaction (payload encrypted); after commit, every pending row is sent oldest first. Without
    Vault configured the row is recorded as ``skipped`` with no payload, and nothing fails.
    """
    if not kv_configured():
        row = VaultKvOutbox.objects.create(
            path=path, status=VaultKvOutbox.Status.SKIPPED, last_error=NOT_CONFIGURED, done_at=timezone.now()
        )
        return row
    row = VaultKvOutbox.objects.create(path=path, payload_encrypted=secretbox.encrypt(json.dumps(data)))
    transaction.on_commit(_sync_after_commit, robust=True)
    return row


def kv_destroy_after_commit(*, path: str) -> VaultKvOutbox:
    """Queue the destruction of every version at ``path`` for after commit (same outbox and retries as writes).

    A secret that must be gone (a decommissioned host's private key) must not survive as an old KV version.
    """
    if not kv_configured():
        return VaultKvOutbox.objects.create(
            path=path,
            operation=VaultKvOutbox.Operation.DESTROY,
            status=VaultKvOutbox.Status.SKIPPED,
            last_error=NOT_CONFIGURED,
            done_at=timezone.now(),
        )
    row = VaultKvOutbox.objects.create(path=path, operation=VaultKvOutbox.Operation.DESTROY)
    transaction.on_commit(_sync_after_commit, robust=True)
    return row


def _sync_after_commit() -> None:
    try:
        vault_sync_pending()
    except Exception:  # the outbox keeps the write; the caller's commit already succeeded
        log.exception("Vault KV sync after commit failed; vault_sync will retry")


@dataclass(frozen=True)
class SyncReport:
    written: int
    failed: int
    pending: int
    last_error: str = ""


def vault_sync_pending(*, limit: int | None = None) -> SyncReport:
    """Send pending outbox rows to Vault, oldest first; stop at the first failure so order is kept."""
    adapter = get_kv_adapter()
    pending = VaultKvOutbox.objects.filter(status=VaultKvOutbox.Status.PENDING).order_by("created_at")
    if adapter is None:
        return SyncReport(written=0, failed=0, pending=pending.count(), last_error=NOT_CONFIGURED)
    written = failed = 0
    last_error = ""
    ids = list(pending.values_list("id", flat=True))
    for row_id in ids[:limit] if limit else ids:
        row = VaultKvOutbox.objects.filter(pk=row_id, status=VaultKvOutbox.Status.PENDING).first()
        if row is None:  # another worker finished it meanwhile
            continue
        # The HTTP call runs outside any transaction: no DB lock is held while Vault answers (or not).
        # Two concurrent syncs may both send a row; that only adds an identical KV version.
        now = timezone.now()
        try:
            if row.operation == VaultKvOutbox.Operation.DESTROY:
                adapter.destroy(row.path)
            else:
                adapter.write(row.path, json.loads(secretbox.decrypt(row.payload_encrypted)))
        except VaultUnavailableError as exc:
            VaultKvOutbox.objects.filter(pk=row.pk).update(
                attempts=row.attempts + 1, last_attempt_at=now, last_error=exc.message
            )
            failed += 1
            last_error = exc.message
            break
        VaultKvOutbox.objects.filter(pk=row.pk, status=VaultKvOutbox.Status.PENDING).update(
            attempts=row.attempts + 1,
            last_attempt_at=now,
            last_error="",
            status=VaultKvOutbox.Status.DONE,
            done_at=timezone.now(),
            payload_encrypted="",  # written: no second copy of the secret at rest
        )
        written += 1
    remaining = VaultKvOutbox.objects.filter(status=VaultKvOutbox.Status.PENDING).count()
    return SyncReport(written=written, failed=failed, pending=remaining, last_error=last_error)
