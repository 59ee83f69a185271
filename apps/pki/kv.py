"""Vault KV v2: the hvac adapter and the after-commit outbox that makes every secret write eventually land.

``kv_write_after_commit`` records the write in the caller's transaction (so a crash after commit loses
nothing) and sends that write once the transaction commits; the outbox worker (``manage.py
powernode_worker``, or ``vault_sync`` once) sends what is left, in bounded batches, one drainer at a time.
Reads never come from here: the DB mirror is the source of truth.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import hvac
import hvac.exceptions
import requests
from django.conf import settings
from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from apps.pki.adapters.vault import VaultAuth
from apps.pki.models import VaultKvOutbox
from powernode import secretbox
from powernode.db import advisory_lock
from powernode.errors import VaultUnavailableError
from powernode.jobs import JobRun

log = logging.getLogger(__name__)

NOT_CONFIGURED = (
    "Vault not configured (VAULT_ADDR with VAULT_TOKEN or VAULT_ROLE_ID unset): kept in the database only."
)


class VaultKvAdapter:
    """Write and read secrets under ``{mount}/data/{path}``; hvac errors become ``VaultUnavailableError``."""

    def __init__(
        self, url: str, token: str = "", *, mount: str = "secret", timeout: float = 10.0, auth: VaultAuth | None = None
    ) -> None:
        session = requests.Session()
        session.trust_env = False  # no proxy or CA-bundle variables for the platform's own Vault
        self.mount = mount
        self.auth = auth or VaultAuth(url, token=token, timeout=timeout)
        self._client = hvac.Client(url=url.rstrip("/"), timeout=timeout, session=session)

    @property
    def client(self) -> hvac.Client:
        self._client.token = self.auth.token()  # a static token, or the AppRole token (renewed, or a new login)
        return self._client

    def write(self, path: str, data: dict[str, Any]) -> int:
        """Write a new version; return its version number."""
        try:
            response = self.auth.again_if_refused(
                lambda: self.client.secrets.kv.v2.create_or_update_secret(
                    path=path, secret=data, mount_point=self.mount
                ),
                lambda: self._client.token,
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
            self.auth.again_if_refused(
                lambda: self.client.secrets.kv.v2.delete_metadata_and_all_versions(path=path, mount_point=self.mount),
                lambda: self._client.token,
            )
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
            response = self.auth.again_if_refused(
                lambda: self.client.secrets.kv.v2.read_secret_version(
                    path=path, mount_point=self.mount, raise_on_deleted_version=True
                ),
                lambda: self._client.token,
            )
        except hvac.exceptions.InvalidPath:
            return None
        except (hvac.exceptions.VaultError, requests.RequestException, OSError, ValueError) as exc:
            raise VaultUnavailableError(f"Vault KV read of {self.mount}/{path} failed: {exc}") from None
        return response["data"]["data"]


# -- the platform's Vault credentials ----------------------------------------------------------------------
_auths: dict[tuple[Any, ...], VaultAuth] = {}
_auths_lock = threading.Lock()


def vault_configured() -> bool:
    """VAULT_ADDR with a credential: VAULT_TOKEN, or the AppRole's VAULT_ROLE_ID."""
    return bool(
        getattr(settings, "VAULT_ADDR", "")
        and (getattr(settings, "VAULT_TOKEN", "") or getattr(settings, "VAULT_ROLE_ID", ""))
    )


kv_configured = vault_configured  # the KV outbox is on exactly when Vault is


def get_vault_auth() -> VaultAuth | None:
    """The process's one VaultAuth for the configured credentials (its AppRole token is shared by every
    adapter, so a process logs in once, not per adapter or thread); None when Vault is not configured."""
    if not vault_configured():
        return None
    key = (
        settings.VAULT_ADDR,
        getattr(settings, "VAULT_TOKEN", ""),
        getattr(settings, "VAULT_ROLE_ID", ""),
        getattr(settings, "VAULT_SECRET_ID", ""),
        getattr(settings, "VAULT_SECRET_ID_FILE", ""),
        getattr(settings, "VAULT_APPROLE_MOUNT", "approle"),
        float(getattr(settings, "VAULT_TIMEOUT", 10)),
    )
    with _auths_lock:
        auth = _auths.get(key)
        if auth is None:
            url, token, role_id, secret_id, secret_id_file, mount, timeout = key
            auth = _auths[key] = VaultAuth(
                url,
                token=token,
                role_id=role_id,
                secret_id=secret_id,
                secret_id_file=secret_id_file,
                mount=mount,
                timeout=timeout,
            )
    return auth


def get_kv_adapter() -> VaultKvAdapter | None:
    auth = get_vault_auth()
    if auth is None:
        return None
    return VaultKvAdapter(
        settings.VAULT_ADDR,
        mount=getattr(settings, "VAULT_KV_MOUNT", "secret"),
        timeout=float(getattr(settings, "VAULT_TIMEOUT", 10)),
        auth=auth,
    )


def kv_write_after_commit(*, path: str, data: dict[str, str]) -> VaultKvOutbox:
    """Queue a KV v2 write of ``data`` at ``path`` (under settings.VAULT_KV_MOUNT) for after commit.

    Call inside the transaction that stores the DB copy. The outbox row is written now, in that
    transaction (payload encrypted); after commit this row is sent (with the few older pending rows of
    the same path before it, see ``outbox_send_row``). Without Vault configured the row is recorded as
    ``skipped`` with no payload, and nothing fails.
    """
    if not kv_configured():
        row = VaultKvOutbox.objects.create(
            path=path, status=VaultKvOutbox.Status.SKIPPED, last_error=NOT_CONFIGURED, done_at=timezone.now()
        )
        return row
    row = VaultKvOutbox.objects.create(path=path, payload_encrypted=secretbox.encrypt(json.dumps(data)))
    transaction.on_commit(functools.partial(_send_after_commit, row.pk), robust=True)
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
    transaction.on_commit(functools.partial(_send_after_commit, row.pk), robust=True)
    return row


def _send_after_commit(row_id: Any) -> None:
    try:
        outbox_send_row(row_id)
    except Exception:  # the outbox keeps the write; the caller's commit already succeeded
        log.exception("Vault KV send after commit failed; the worker (powernode_worker) will retry")


# -- sending ----------------------------------------------------------------------------------------------
# Order: writes to one path reach Vault in created_at order (the services that write one path serialise on
# the row it mirrors, so created_at order is their commit order). Whoever sends a path's rows holds that
# path's advisory lock (PATH_LOCK_CLASS, hashtext(path)) and sends only the oldest pending row of the path;
# paths do not wait for each other. The outbox worker also holds DRAIN_LOCK_KEY: one drainer at a time.

#: pg_try_advisory_lock key of the outbox drainer (one across every platform process and worker)
DRAIN_LOCK_KEY = 0x706E_6B76_6F62  # "pnkvob"
#: first key of the per-path locks, pg_try_advisory_lock(int4, int4): (PATH_LOCK_CLASS, hashtext(path))
PATH_LOCK_CLASS = 0x706E_6B76  # "pnkv"
#: after commit, a write is sent inline with at most this many older pending rows of its path before it;
#: a longer queue (Vault was down) is the worker's, so no request drains a backlog
INLINE_MAX_ROWS = 5


@contextlib.contextmanager
def _path_lock(path: str) -> Iterator[bool]:
    if connection.vendor != "postgresql":
        yield True
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT hashtext(%s)", [path])
        key = cursor.fetchone()[0]
    with advisory_lock(PATH_LOCK_CLASS, key) as acquired:
        yield acquired


def _pending() -> QuerySet[VaultKvOutbox]:
    return VaultKvOutbox.objects.filter(status=VaultKvOutbox.Status.PENDING).order_by("created_at", "id")


def _send(adapter: VaultKvAdapter, row: VaultKvOutbox) -> str:
    """Send one row (its path's lock held); mark it done. Returns the error message, "" when sent."""
    # The HTTP call runs outside any transaction: no DB lock is held while Vault answers (or not).
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
        return exc.message
    VaultKvOutbox.objects.filter(pk=row.pk, status=VaultKvOutbox.Status.PENDING).update(
        attempts=row.attempts + 1,
        last_attempt_at=now,
        last_error="",
        status=VaultKvOutbox.Status.DONE,
        done_at=timezone.now(),
        payload_encrypted="",  # written: no second copy of the secret at rest
    )
    return ""


def outbox_send_row(row_id: Any) -> bool:
    """Send one committed row now, after the older pending rows of its path (at most INLINE_MAX_ROWS).

    Leaves it to the worker (returns False) when another process is sending that path, when the path's
    queue is longer (a backlog after an outage) or when Vault refuses; never sends other paths' rows.
    """
    adapter = get_kv_adapter()
    row = VaultKvOutbox.objects.filter(pk=row_id, status=VaultKvOutbox.Status.PENDING).first()
    if row is None:  # already sent (by the worker, or by an earlier write of its path)
        return True
    if adapter is None:
        return False
    with _path_lock(row.path) as acquired:
        if not acquired:
            return False
        head = list(_pending().filter(path=row.path, created_at__lte=row.created_at)[: INLINE_MAX_ROWS + 1])
        if len(head) > INLINE_MAX_ROWS or row.pk not in {r.pk for r in head}:
            return False
        for older in head:
            if _send(adapter, older):
                return False
            if older.pk == row.pk:
                return True
    return False


@dataclass(frozen=True)
class SyncReport:
    written: int
    failed: int
    pending: int
    last_error: str = ""


def vault_sync_pending(
    *, limit: int | None = None, batch_size: int | None = None, max_failures: int = 3
) -> SyncReport:
    """Send pending outbox rows to Vault: batches of ``batch_size`` (settings.VAULT_OUTBOX_BATCH), oldest
    first, each path in order. A failed row holds back the later rows of its path; after ``max_failures``
    failures (Vault down) the run stops. A path another process is sending is left for the next run."""
    adapter = get_kv_adapter()
    if adapter is None:
        return SyncReport(written=0, failed=0, pending=_pending().count(), last_error=NOT_CONFIGURED)
    batch_size = batch_size or int(getattr(settings, "VAULT_OUTBOX_BATCH", 100))
    written = failed = 0
    last_error = ""
    held_back: set[str] = set()  # paths whose next row may not go now (failed, or being sent elsewhere)
    while limit is None or written + failed < limit:
        size = batch_size if limit is None else min(batch_size, limit - written - failed)
        batch = list(_pending().exclude(path__in=held_back)[:size])
        if not batch:
            break
        progress = False
        for row in batch:
            if row.path in held_back:
                continue
            with _path_lock(row.path) as acquired:
                head = _pending().filter(path=row.path).first() if acquired else None
                if head is None or head.pk != row.pk:  # being sent elsewhere, or already sent
                    held_back.add(row.path)
                    continue
                error = _send(adapter, head)
            if error:
                failed += 1
                last_error = error
                held_back.add(row.path)
                if failed >= max_failures:
                    return SyncReport(written, failed, _pending().count(), last_error)
            else:
                written += 1
                progress = True
        if not progress:
            break
    return SyncReport(written=written, failed=failed, pending=_pending().count(), last_error=last_error)


def outbox_drain_locked(**kwargs: Any) -> SyncReport | None:
    """``vault_sync_pending`` under the drainer's advisory lock; None when another process is draining."""
    with advisory_lock(DRAIN_LOCK_KEY) as acquired:
        if not acquired:
            return None
        return vault_sync_pending(**kwargs)


def outbox_job_run() -> JobRun:
    """The worker's outbox job (registered in PkiConfig.ready)."""
    if not kv_configured():
        return JobRun(counts={"vault": "not configured"})
    report = outbox_drain_locked()
    if report is None:
        return JobRun(skipped=True)
    counts = {"written": report.written, "failed": report.failed, "pending": report.pending}
    return JobRun(
        counts=counts,
        failed=bool(report.failed),
        more=bool(report.pending and not report.failed and report.written),
        error=report.last_error,
    )
