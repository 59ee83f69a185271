from django.apps import AppConfig
from django.conf import settings


class PkiConfig(AppConfig):
    name = "apps.pki"
    label = "pki"
    verbose_name = "Internal CA"

    def ready(self) -> None:
        from apps.pki import (  # noqa: F401  (system checks; the event kinds this app records)
            checks,
            kinds,
            selectors,
        )
        from apps.pki.kv import outbox_job_run
        from apps.pki.services import ca_ready
        from powernode import jobs, metrics
        from powernode.health import register_readiness_check

        jobs.register(
            jobs.Job(
                name="vault_outbox",
                run=outbox_job_run,
                interval_s=lambda: float(settings.VAULT_OUTBOX_INTERVAL_S),
            )
        )
        register_readiness_check("ca", ca_ready)
        metrics.register_gauge(
            "powernode_outbox_pending",
            "Vault KV writes recorded in the outbox and not yet sent.",
            lambda: {(): selectors.kv_outbox_pending_count()},
        )
