"""App config of the managed Docker runtimes."""

from django.apps import AppConfig
from django.conf import settings


class DockerHostsConfig(AppConfig):
    name = "apps.docker_hosts"
    label = "docker_hosts"
    verbose_name = "Docker hosts"

    def ready(self) -> None:
        from apps.docker_hosts import (
            kinds,  # noqa: F401  (declares the event kinds this app records)
            selectors,
        )
        from apps.docker_hosts.prober import probe_job_run
        from apps.docker_hosts.runtime import DockerRuntime
        from powernode import jobs, metrics, runtimes

        runtimes.register(DockerRuntime())
        # the periodic probe as a job of manage.py powernode_worker (server processes run it too: prober.py)
        jobs.register(
            jobs.Job(
                name="docker_probe",
                run=probe_job_run,
                interval_s=lambda: float(settings.POWERNODE_DOCKER_PROBE_INTERVAL_S),
            )
        )
        metrics.register_gauge(
            "powernode_docker_hosts",
            "Docker hosts by status (pending, connected, unreachable, decommissioning, decommissioned, failed).",
            lambda: {(status,): n for status, n in selectors.host_status_counts().items()},
            labelnames=("status",),
        )
