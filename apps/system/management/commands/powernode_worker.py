"""The platform's background worker: the jobs apps register in powernode.jobs (Vault KV outbox, Docker probe).

Run one (or more, for failover: each job's advisory lock lets one process at a time do its work) next to the
server processes. ``--once`` runs every job once and prints what each did as JSON; ``--job`` picks jobs.
SIGTERM or SIGINT stops the loop after the current run.
"""

from __future__ import annotations

import json
import logging
import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from powernode import jobs

log = logging.getLogger("powernode.worker")


class Command(BaseCommand):
    help = "Run the background jobs (Vault KV outbox, Docker probe) in a loop, or each once with --once."

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument("--once", action="store_true", help="run every job once, print its counts, exit")
        parser.add_argument("--job", action="append", default=None, help="only this job (repeatable)")

    def handle(self, *args, once: bool, job: list[str] | None, **options) -> None:
        known = {j.name: j for j in jobs.jobs()}
        unknown = sorted(set(job or ()) - set(known))
        if unknown:
            raise CommandError(f"unknown job(s) {', '.join(unknown)}; the jobs are {', '.join(sorted(known))}")
        selected = tuple(known[name] for name in job) if job else tuple(known.values())
        if once:
            self._once(selected)
            return
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        names = ", ".join(f"{j.name} every {j.interval_s():g} s" for j in selected)
        self.stdout.write(f"powernode_worker: {names}; SIGTERM stops it")
        self.stdout.flush()
        jobs.run_forever(
            selected, stop=stop, max_backoff_s=float(settings.POWERNODE_WORKER_MAX_BACKOFF_S), on_run=self._log_run
        )
        self.stdout.write("powernode_worker: stopped")

    def _once(self, selected: tuple[jobs.Job, ...]) -> None:
        failed = []
        for job in selected:
            result = jobs.run_job(job)
            self.stdout.write(json.dumps({"job": job.name, **_summary(result)}))
            if result.failed:
                failed.append(job.name)
        if failed:
            raise CommandError(f"failed: {', '.join(failed)}")

    def _log_run(self, job: jobs.Job, result: jobs.JobRun) -> None:
        if result.failed:
            log.warning("worker: %s failed: %s %s", job.name, result.error, result.counts)
        elif result.counts and any(result.counts.values()):
            log.info("worker: %s %s", job.name, result.counts)
        else:
            log.debug("worker: %s %s", job.name, _summary(result))


def _summary(result: jobs.JobRun) -> dict:
    return {
        "counts": result.counts,
        "failed": result.failed,
        "skipped": result.skipped,
        "more": result.more,
        "error": result.error,
    }
