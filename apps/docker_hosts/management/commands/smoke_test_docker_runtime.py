"""``manage.py smoke_test_docker_runtime``: an agent through the docker handshake (exit 0 iff all pass)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.docker_hosts.smoke import SmokeRun


class Command(BaseCommand):
    help = (
        "Exercise the docker runtime handshake at the platform layer (no VM): throwaway template, instance, "
        "network and peer; heartbeat, installing, wants_cert, wants_config, ready; decommission; cleanup. "
        "Uses the configured database and CA (LocalCaAdapter or VaultCaAdapter)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--url",
            help="base URL of a running platform sharing this database (default: an in-process server on "
            "127.0.0.1 on a free port)",
        )
        parser.add_argument(
            "--keep",
            action="store_true",
            help="keep the throwaway rows for inspection (still decommissioned)",
        )

    def handle(self, *args: Any, url: str | None = None, keep: bool = False, **options: Any) -> None:
        run = SmokeRun(out=self.stdout, url=url, keep=keep)
        if not run.run():
            failed = [r.name for r in run.results if not r.ok]
            raise CommandError(f"smoke test failed at: {', '.join(failed)}")
