"""Probe the daemons of connected and unreachable Docker hosts (docs/CONTAINER_RUNTIMES.md "Probe").

``--once``: one round, its counts on stdout. Without it: a round every POWERNODE_DOCKER_PROBE_INTERVAL_S
(or ``--interval``) until stopped, for deployments that run the probe as its own service instead of in
the server processes. On PostgreSQL an advisory lock keeps it to one probing process at a time."""

from __future__ import annotations

import json
import threading

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from apps.docker_hosts.prober import probe_forever
from apps.docker_hosts.services.probe import docker_probe_locked_round


class Command(BaseCommand):
    help = "Probe connected/unreachable Docker hosts over mTLS: connected ↔ unreachable, with events."

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument("--once", action="store_true", help="one round, then exit")
        parser.add_argument("--interval", type=float, default=None, help="seconds between rounds")

    def handle(self, *args, once: bool, interval: float | None, **options) -> None:
        if once:
            counts = docker_probe_locked_round()
            if counts is None:
                raise CommandError("another process holds the probe lock; nothing probed")
            self.stdout.write(json.dumps(counts))
            return
        interval = interval if interval is not None else float(settings.POWERNODE_DOCKER_PROBE_INTERVAL_S)
        if interval <= 0:
            raise CommandError("the interval must be > 0 (POWERNODE_DOCKER_PROBE_INTERVAL_S or --interval)")
        self.stdout.write(f"docker_probe: a round every {interval:g} s; Ctrl-C stops it")
        try:
            probe_forever(interval_s=interval, stop=threading.Event())
        except KeyboardInterrupt:
            pass
