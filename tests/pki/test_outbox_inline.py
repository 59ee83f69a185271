"""After commit a write sends itself (and the few older pending writes of its path), never a backlog; the
worker command drains the rest. Against the run's real OpenBao."""

from __future__ import annotations

import io
import json
import uuid

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction

from apps.pki.kv import INLINE_MAX_ROWS, VaultKvAdapter, kv_write_after_commit
from apps.pki.models import VaultKvOutbox
from powernode import secretbox
from tests.openbao import OpenBaoServer, point_settings_at

pytestmark = [pytest.mark.vault, pytest.mark.django_db]


@pytest.fixture
def vault(settings, openbao: OpenBaoServer) -> VaultKvAdapter:  # noqa: ANN001 - pytest-django settings
    point_settings_at(settings, openbao)
    return VaultKvAdapter(openbao.url, openbao.token, mount="secret")


def _pending_rows(path: str, count: int) -> None:
    """``count`` writes left pending (as after an outage), values 0..count-1."""
    for n in range(count):
        VaultKvOutbox.objects.create(path=path, payload_encrypted=secretbox.encrypt(json.dumps({"v": str(n)})))


def _write(path: str, value: str, capture) -> VaultKvOutbox:  # noqa: ANN001 - django_capture_on_commit_callbacks
    with capture(execute=True):
        with transaction.atomic():
            row = kv_write_after_commit(path=path, data={"v": value})
    row.refresh_from_db()
    return row


def test_a_write_after_an_outage_sends_itself_not_the_backlog(vault, django_capture_on_commit_callbacks) -> None:  # noqa: ANN001
    prefix = f"powernode/test-inline-{uuid.uuid4().hex[:8]}"
    for n in range(30):
        _pending_rows(f"{prefix}/backlog-{n}", 1)
    row = _write(f"{prefix}/fresh", "new", django_capture_on_commit_callbacks)
    assert row.status == VaultKvOutbox.Status.DONE
    assert vault.read(f"{prefix}/fresh") == {"v": "new"}
    assert VaultKvOutbox.objects.filter(status="pending").count() == 30  # the worker's
    assert vault.read(f"{prefix}/backlog-0") is None


def test_a_write_sends_the_few_older_writes_of_its_path_first(vault, django_capture_on_commit_callbacks) -> None:  # noqa: ANN001
    path = f"powernode/test-inline-{uuid.uuid4().hex[:8]}/host"
    _pending_rows(path, INLINE_MAX_ROWS - 1)
    row = _write(path, "last", django_capture_on_commit_callbacks)
    assert row.status == VaultKvOutbox.Status.DONE
    assert not VaultKvOutbox.objects.filter(status="pending").exists()
    assert vault.read(path) == {"v": "last"}


def test_a_long_queue_on_its_path_is_left_to_the_worker_in_order(vault, django_capture_on_commit_callbacks) -> None:  # noqa: ANN001
    path = f"powernode/test-inline-{uuid.uuid4().hex[:8]}/host"
    _pending_rows(path, INLINE_MAX_ROWS + 3)
    row = _write(path, "last", django_capture_on_commit_callbacks)
    # not sent ahead of the older writes of its path (that would reorder them), and not draining them inline
    assert row.status == VaultKvOutbox.Status.PENDING
    assert vault.read(path) is None

    out = io.StringIO()
    call_command("powernode_worker", "--once", "--job", "vault_outbox", stdout=out)
    report = json.loads(out.getvalue())
    assert report["job"] == "vault_outbox" and report["failed"] is False
    assert report["counts"] == {"written": INLINE_MAX_ROWS + 4, "failed": 0, "pending": 0}
    assert vault.read(path) == {"v": "last"}


def test_worker_once_reports_vault_down_as_a_failure(settings, django_capture_on_commit_callbacks) -> None:  # noqa: ANN001
    settings.VAULT_ADDR = "http://127.0.0.1:9"  # discard port: nothing listens
    settings.VAULT_TOKEN = "dev-nothing"
    settings.VAULT_TIMEOUT = 2
    _pending_rows("powernode/test-inline-down/host", 2)
    with pytest.raises(CommandError, match="failed: vault_outbox"):
        call_command("powernode_worker", "--once", "--job", "vault_outbox", stdout=io.StringIO())
    row = VaultKvOutbox.objects.order_by("created_at").first()
    assert row.status == "pending" and row.attempts == 1 and "failed" in row.last_error
    assert VaultKvOutbox.objects.order_by("created_at").last().attempts == 0  # held back behind the first


def test_worker_refuses_an_unknown_job() -> None:
    with pytest.raises(CommandError, match="unknown job.*no_such_job.*docker_probe, vault_outbox"):
        call_command("powernode_worker", "--once", "--job", "no_such_job")
