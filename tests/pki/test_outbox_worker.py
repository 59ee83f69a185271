"""The Vault KV outbox across processes, on real PostgreSQL and a real OpenBao: two ``powernode_worker``
processes drain a backlog exactly once and in order per path; Vault down mid-drain loses nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import hvac
import psycopg
import pytest
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from apps.pki.kv import (
    DRAIN_LOCK_KEY,
    PATH_LOCK_CLASS,
    VaultKvAdapter,
    kv_write_after_commit,
    outbox_job_run,
    vault_sync_pending,
)
from apps.pki.models import VaultKvOutbox
from powernode import secretbox
from tests.needs import need_postgres
from tests.openbao import OpenBaoServer, point_settings_at

pytestmark = [pytest.mark.postgres, pytest.mark.vault, pytest.mark.django_db(transaction=True)]

BASE_DIR = Path(__file__).resolve().parents[2]
DEADLINE_S = 300  # a guard against a worker that never finishes, not a measurement


def _backlog(prefix: str, *, paths: int, versions: int) -> list[str]:
    """``paths * versions`` pending writes, interleaved across paths; version k of a path carries seq k."""
    start = timezone.now() - timedelta(hours=1)
    names = [f"{prefix}/host-{p:03d}" for p in range(paths)]
    rows = [
        VaultKvOutbox(
            path=names[p],
            payload_encrypted=secretbox.encrypt(json.dumps({"seq": str(k)})),
            created_at=start + timedelta(milliseconds=k * paths + p),
        )
        for k in range(1, versions + 1)
        for p in range(paths)
    ]
    VaultKvOutbox.objects.bulk_create(rows, batch_size=500)
    return names


def _worker_env(server: OpenBaoServer, **extra: str) -> dict[str, str]:
    db = connection.settings_dict
    env = {k: v for k, v in os.environ.items() if not k.startswith("VAULT_")}
    env.update(
        DJANGO_SETTINGS_MODULE="powernode.settings",
        DJANGO_DEBUG="true",
        POWERNODE_VAR_DIR=str(settings.VAR_DIR),  # the same development encryption key as this process
        DATABASE_URL=f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        VAULT_ADDR=server.url,
        VAULT_TOKEN=server.token,
        VAULT_KV_MOUNT="secret",
        VAULT_TIMEOUT="2",
        VAULT_OUTBOX_INTERVAL_S="0.2",
        POWERNODE_WORKER_MAX_BACKOFF_S="1",
        POWERNODE_DOCKER_PROBE_INTERVAL_S="0",
        POWERNODE_LOG_LEVEL="INFO",
        PYTHONUNBUFFERED="1",
        **extra,
    )
    return env


class Workers:
    def __init__(self, env: dict[str, str], logdir: Path, count: int) -> None:
        self.logs = [logdir / f"worker-{i}.log" for i in range(count)]
        self.procs = []
        for log_path in self.logs:
            with open(log_path, "wb") as log:
                self.procs.append(
                    subprocess.Popen(
                        [sys.executable, "manage.py", "powernode_worker", "--job", "vault_outbox"],
                        cwd=BASE_DIR,
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )

    def wait_until(self, condition, what: str) -> None:  # noqa: ANN001
        deadline = time.monotonic() + DEADLINE_S
        while not condition():
            for proc, log in zip(self.procs, self.logs, strict=True):
                assert proc.poll() is None, f"a worker exited ({proc.returncode}):\n{log.read_text()}"
            if time.monotonic() > deadline:
                pytest.fail(f"{what} did not happen:\n" + "\n".join(log.read_text()[-3000:] for log in self.logs))
            time.sleep(0.2)

    def stop(self) -> list[str]:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return [log.read_text() for log in self.logs]


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[list[Workers]]:
    started: list[Workers] = []
    yield started
    for w in started:
        w.stop()


def _pending() -> int:
    return VaultKvOutbox.objects.filter(status=VaultKvOutbox.Status.PENDING).count()


def _versions(client: hvac.Client, path: str) -> list[str]:
    """The seq of every stored version of ``path``, oldest first."""
    kv = client.secrets.kv.v2
    meta = kv.read_secret_metadata(path=path, mount_point="secret")["data"]
    return [
        kv.read_secret_version(path=path, version=v, mount_point="secret", raise_on_deleted_version=True)["data"][
            "data"
        ]["seq"]
        for v in range(1, meta["current_version"] + 1)
    ]


def test_two_workers_drain_a_backlog_of_1000_exactly_once_in_order_per_path(
    openbao: OpenBaoServer, workers: list[Workers], tmp_path: Path
) -> None:
    need_postgres()
    paths = _backlog(f"powernode/test-drain-{uuid.uuid4().hex[:8]}", paths=100, versions=10)
    assert _pending() == 1000
    # small batches: each worker takes the drainer's lock many times, so both get it in turn
    group = Workers(_worker_env(openbao, VAULT_OUTBOX_BATCH="25"), tmp_path, count=2)
    workers.append(group)
    group.wait_until(lambda: _pending() == 0, "draining the backlog")
    logs = group.stop()
    assert all("powernode_worker: stopped" in log for log in logs), logs

    rows = VaultKvOutbox.objects.all()
    assert {(r.status, r.attempts, r.payload_encrypted, r.last_error) for r in rows} == {("done", 1, "", "")}
    client = hvac.Client(openbao.url, token=openbao.token)
    expected = [str(k) for k in range(1, 11)]
    for path in paths:
        # exactly once (ten versions, not more) and in order (version k is write k)
        assert _versions(client, path) == expected, path


def test_vault_down_mid_drain_loses_nothing_and_is_retried(
    openbao_persistent: OpenBaoServer, workers: list[Workers], tmp_path: Path
) -> None:
    need_postgres()
    server = openbao_persistent
    paths = _backlog(f"powernode/test-outage-{uuid.uuid4().hex[:8]}", paths=60, versions=5)
    group = Workers(_worker_env(server, VAULT_OUTBOX_BATCH="10"), tmp_path, count=1)
    workers.append(group)
    try:
        group.wait_until(lambda: _pending() <= 250, "a first part of the backlog written")
        server.stop()
        group.wait_until(
            lambda: VaultKvOutbox.objects.filter(status="pending").exclude(last_error="").exists(),
            "a failed send recorded while Vault is down",
        )
        assert _pending() > 0
        failed = VaultKvOutbox.objects.filter(status="pending").exclude(last_error="").first()
        assert "failed" in failed.last_error and failed.attempts >= 1
    finally:
        server.start()
    group.wait_until(lambda: _pending() == 0, "the rest sent once Vault is back")
    group.stop()

    assert set(VaultKvOutbox.objects.values_list("status", "payload_encrypted", "last_error")) == {("done", "", "")}
    client = hvac.Client(server.url, token=server.token)
    for path in paths:
        seen = _versions(client, path)
        # nothing lost and never out of order; a write whose answer was lost when Vault stopped may be sent
        # again (at least once: an identical version)
        assert sorted(set(seen), key=int) == ["1", "2", "3", "4", "5"], (path, seen)
        assert seen == sorted(seen, key=int), (path, seen)


def _other_session():  # noqa: ANN202 - a psycopg connection of another "process"
    s = connection.settings_dict
    return psycopg.connect(
        host=s["HOST"], port=s["PORT"], user=s["USER"], password=s["PASSWORD"], dbname=s["NAME"], autocommit=True
    )


def test_a_path_being_sent_elsewhere_is_left_alone_and_one_drainer_runs(
    settings, openbao: OpenBaoServer
) -> None:  # noqa: ANN001
    need_postgres()
    point_settings_at(settings, openbao)
    path = f"powernode/test-locks-{uuid.uuid4().hex[:8]}/host"
    with _other_session() as other:
        other.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", [PATH_LOCK_CLASS, path])
        with transaction.atomic():
            row = kv_write_after_commit(path=path, data={"v": "1"})
        row.refresh_from_db()
        assert row.status == VaultKvOutbox.Status.PENDING and row.attempts == 0  # another sender has the path
        assert vault_sync_pending().written == 0  # nor does a drain send it meanwhile

        other.execute("SELECT pg_advisory_lock(%s)", [DRAIN_LOCK_KEY])
        assert outbox_job_run().skipped  # another drainer runs
        other.execute("SELECT pg_advisory_unlock_all()")
    run = outbox_job_run()
    assert not run.skipped and run.counts == {"written": 1, "failed": 0, "pending": 0}
    assert VaultKvAdapter(openbao.url, openbao.token).read(path) == {"v": "1"}
