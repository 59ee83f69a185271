from django.apps import AppConfig


class NodesConfig(AppConfig):
    name = "apps.nodes"
    label = "nodes"

    def ready(self) -> None:
        from apps.nodes import kinds  # noqa: F401  (declares the event kinds this app records)
