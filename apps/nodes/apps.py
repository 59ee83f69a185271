from django.apps import AppConfig


class NodesConfig(AppConfig):
    name = "apps.nodes"
    label = "nodes"

    def ready(self) -> None:
        from apps.nodes import (
            kinds,  # noqa: F401  (declares the event kinds this app records)
            selectors,
        )
        from powernode import metrics

        metrics.register_gauge(
            "powernode_instances",
            "Live node instances by their agent's heartbeat: fresh, stale (silent over 1.5 intervals), never.",
            lambda: {(state,): n for state, n in selectors.heartbeat_counts().items()},
            labelnames=("heartbeat",),
        )
