"""App config of the managed Docker runtimes."""

from django.apps import AppConfig


class DockerHostsConfig(AppConfig):
    name = "apps.docker_hosts"
    label = "docker_hosts"
    verbose_name = "Docker hosts"
