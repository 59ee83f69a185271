"""App config of the managed Docker runtimes."""

from django.apps import AppConfig


class DockerHostsConfig(AppConfig):
    name = "apps.docker_hosts"
    label = "docker_hosts"
    verbose_name = "Docker hosts"

    def ready(self) -> None:
        from apps.docker_hosts import kinds  # noqa: F401  (declares the event kinds this app records)
        from apps.docker_hosts.runtime import DockerRuntime
        from powernode import runtimes

        runtimes.register(DockerRuntime())
