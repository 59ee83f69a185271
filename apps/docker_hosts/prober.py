"""Where the periodic Docker probe runs (docs/CONTAINER_RUNTIMES.md "Probe").

Every platform server process (``uvicorn powernode.asgi:application``: ``make run``, the lab, production)
starts ``start_background_prober()`` at ASGI lifespan startup: a daemon thread that runs one round every
POWERNODE_DOCKER_PROBE_INTERVAL_S. On PostgreSQL each round first takes an advisory lock
(``pg_try_advisory_lock``), so with several processes one probes and the others skip that round; on SQLite
(one process) there is no lock. ``manage.py docker_probe`` runs the same loop in the foreground (or one
round with ``--once``); ``manage.py powernode_worker`` runs it as one of the worker's jobs (``probe_job_run``).
With the same lock everywhere, at most one round runs at a time whoever starts it.
"""

from __future__ import annotations

import logging
import threading

from django.conf import settings
from django.db import close_old_connections, connection

from apps.docker_hosts.services.probe import docker_probe_locked_round
from powernode.jobs import JobRun

log = logging.getLogger(__name__)

_started: threading.Thread | None = None
_start_lock = threading.Lock()


def probe_forever(*, interval_s: float, stop: threading.Event) -> None:
    """A round every ``interval_s`` until ``stop`` is set; a failed round is logged, the next one runs."""
    while not stop.wait(interval_s):
        try:
            close_old_connections()
            counts = docker_probe_locked_round()
            if counts is None:
                log.debug("docker probe: another process holds the probe lock; skipped")
            elif counts["unreachable"] or counts["recovered"]:
                log.warning("docker probe: %s", counts)
        except Exception:
            log.exception("docker probe round failed")
        finally:
            connection.close()


def start_background_prober() -> threading.Thread | None:
    """Start this process's probe thread once (no-op when POWERNODE_DOCKER_PROBE_INTERVAL_S is 0)."""
    global _started
    interval = float(settings.POWERNODE_DOCKER_PROBE_INTERVAL_S)
    if interval <= 0:
        return None
    with _start_lock:
        if _started is None or not _started.is_alive():
            _started = threading.Thread(
                target=probe_forever,
                kwargs={"interval_s": interval, "stop": threading.Event()},
                name="docker-probe",
                daemon=True,
            )
            _started.start()
    return _started


def probe_job_run() -> JobRun:
    """The worker's probe job (registered in DockerHostsConfig.ready): one round under the probe lock."""
    counts = docker_probe_locked_round()
    if counts is None:
        return JobRun(skipped=True)
    return JobRun(counts=counts)
