"""Send pending Vault KV writes from the outbox once (the worker, powernode_worker, does it in a loop)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from apps.pki.kv import kv_configured, outbox_drain_locked


class Command(BaseCommand):
    help = "Send pending Vault KV writes (VaultKvOutbox) to Vault. Exits 1 if some are still pending."

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument("--limit", type=int, default=None, help="at most this many writes")

    def handle(self, *args, limit: int | None, **options) -> None:
        if not kv_configured():
            self.stdout.write("Vault not configured (VAULT_ADDR / VAULT_TOKEN unset): nothing to sync")
            return
        report = outbox_drain_locked(limit=limit)
        if report is None:
            raise CommandError("another process (a powernode_worker) is draining the outbox; try again later")
        self.stdout.write(f"written {report.written}, failed {report.failed}, pending {report.pending}")
        if report.pending:
            raise CommandError(f"{report.pending} write(s) still pending: {report.last_error}")
