"""The background jobs ``manage.py powernode_worker`` runs: apps register them here, the worker loops over them.

An app registers a :class:`Job` from its ``AppConfig.ready()`` (the Vault KV outbox in ``pki``, the Docker
probe in ``docker_hosts``); the worker never imports an app. A run returns a :class:`JobRun`; ``failed`` runs
are retried with exponential backoff (up to POWERNODE_WORKER_MAX_BACKOFF_S), ``more`` runs again at once.
Each job takes its own PostgreSQL advisory lock, so several workers (and server processes) may run the same
job: one at a time does the work, the others skip. Part of the kernel: imports no app.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import close_old_connections

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobRun:
    """What one run did: ``counts`` for the log, ``failed`` (retry with backoff), ``more`` (run again now),
    ``skipped`` (another process holds the job's lock)."""

    counts: dict[str, Any] = field(default_factory=dict)
    failed: bool = False
    more: bool = False
    skipped: bool = False
    error: str = ""


@dataclass(frozen=True)
class Job:
    name: str
    run: Callable[[], JobRun]
    #: seconds between runs, read at each scheduling (0 or less: the job is off)
    interval_s: Callable[[], float]


_JOBS: dict[str, Job] = {}


def register(job: Job) -> Job:
    _JOBS[job.name] = job
    return job


def jobs() -> tuple[Job, ...]:
    return tuple(_JOBS.values())


def run_job(job: Job) -> JobRun:
    """One run; an exception is a failed run, logged with its traceback."""
    try:
        return job.run()
    except Exception as exc:
        log.exception("worker: job %s failed", job.name)
        return JobRun(failed=True, error=f"{type(exc).__name__}: {exc}")


def run_forever(
    selected: tuple[Job, ...],
    *,
    stop: threading.Event,
    max_backoff_s: float,
    on_run: Callable[[Job, JobRun], None],
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Run each job every ``interval_s`` until ``stop`` is set: at once again when a run says ``more``,
    after ``interval * 2**failures`` (capped at ``max_backoff_s``) while its runs fail."""
    now = clock()
    due = {job.name: now for job in selected}
    failures = dict.fromkeys(due, 0)
    while not stop.is_set():
        active = [job for job in selected if job.interval_s() > 0]
        if not active:
            stop.wait(1.0)
            continue
        job = min(active, key=lambda j: due[j.name])
        wait = due[job.name] - clock()
        if wait > 0:
            stop.wait(min(wait, 1.0))  # re-read intervals at least every second
            continue
        close_old_connections()  # a broken or expired connection is replaced, as between requests
        result = run_job(job)
        close_old_connections()
        on_run(job, result)
        interval = job.interval_s()
        if result.failed:
            failures[job.name] += 1
            delay = min(interval * 2 ** failures[job.name], max(max_backoff_s, interval))
        else:
            failures[job.name] = 0
            delay = 0.0 if result.more else interval
        due[job.name] = clock() + delay
