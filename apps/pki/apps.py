from django.apps import AppConfig


class PkiConfig(AppConfig):
    name = "apps.pki"
    label = "pki"
    verbose_name = "Internal CA"

    def ready(self) -> None:
        from apps.pki import (
            kinds,  # noqa: F401  (declares the event kinds this app records)
            selectors,
        )
        from apps.pki.services import ca_ready
        from powernode import metrics
        from powernode.health import register_readiness_check

        register_readiness_check("ca", ca_ready)
        metrics.register_gauge(
            "powernode_outbox_pending",
            "Vault KV writes recorded in the outbox and not yet sent.",
            lambda: {(): selectors.kv_outbox_pending_count()},
        )
