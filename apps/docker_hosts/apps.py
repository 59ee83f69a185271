"""App config of the managed Docker runtimes."""

from django.apps import AppConfig


class DockerHostsConfig(AppConfig):
    name = "apps.docker_hosts"
    label = "docker_hosts"
    verbose_name = "Docker hosts"

    def ready(self) -> None:
        from apps.docker_hosts import (
            kinds,  # noqa: F401  (declares the event kinds this app records)
            selectors,
        )
        from apps.docker_hosts.runtime import DockerRuntime
        from powernode import metrics, runtimes

        runtimes.register(DockerRuntime())
        metrics.register_gauge(
            "powernode_docker_hosts",
            "Docker hosts by status (pending, connected, unreachable, decommissioning, decommissioned, failed).",
            lambda: {(status,): n for status, n in selectors.host_status_counts().items()},
            labelnames=("status",),
        )
