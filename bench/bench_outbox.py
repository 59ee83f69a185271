"""Vault KV outbox on PostgreSQL and a real OpenBao: drain rate of a backlog (in-process, one drainer), and the
cost of the inline send a write makes after its commit. Prints rows/s and ms per write; no targets asserted.

Run: ``.venv/bin/python bench/bench_outbox.py [--rows N] [--paths P]`` (BENCH_DATABASE_URL: an existing
PostgreSQL; else scripts/pg.sh starts the checkout's own).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from django_bench import setup_postgres_django  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--paths", type=int, default=200)
    parser.add_argument("--writes", type=int, default=200, help="inline writes (one per transaction)")
    args = parser.parse_args()
    setup_postgres_django("powernode_bench_outbox")

    from django.conf import settings
    from django.db import transaction
    from django.utils import timezone

    from apps.pki.kv import kv_write_after_commit, vault_sync_pending
    from apps.pki.models import VaultKvOutbox
    from powernode import secretbox
    from tests.openbao import OpenBaoServer, point_settings_at

    with tempfile.TemporaryDirectory(prefix="bench-outbox-") as tmp, OpenBaoServer(tmp) as server:
        point_settings_at(settings, server)
        start = timezone.now() - timedelta(hours=1)
        rows = [
            VaultKvOutbox(
                path=f"powernode/bench/host-{i % args.paths:04d}",
                payload_encrypted=secretbox.encrypt(json.dumps({"seq": str(i)})),
                created_at=start + timedelta(milliseconds=i),
            )
            for i in range(args.rows)
        ]
        VaultKvOutbox.objects.bulk_create(rows, batch_size=1000)
        for batch in (100, 25):
            VaultKvOutbox.objects.update(
                status=VaultKvOutbox.Status.PENDING, payload_encrypted=rows[0].payload_encrypted
            )
            began = time.perf_counter()
            report = vault_sync_pending(batch_size=batch)
            elapsed = time.perf_counter() - began
            assert report.pending == 0 and report.written == args.rows, report
            print(f"drain {args.rows} rows over {args.paths} paths, batch {batch}: {args.rows / elapsed:.0f} rows/s")

        began = time.perf_counter()
        for i in range(args.writes):
            with transaction.atomic():
                kv_write_after_commit(path=f"powernode/bench/inline-{i % 50}", data={"v": str(i)})
        elapsed = time.perf_counter() - began
        pending = VaultKvOutbox.objects.filter(status=VaultKvOutbox.Status.PENDING).count()
        print(
            f"inline: {args.writes} writes, each sent after its commit: {1000 * elapsed / args.writes:.1f} ms/write, "
            f"{pending} left pending"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
