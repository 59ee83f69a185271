from django.apps import AppConfig


class PkiConfig(AppConfig):
    name = "apps.pki"
    label = "pki"
    verbose_name = "Internal CA"

    def ready(self) -> None:
        from apps.pki import kinds  # noqa: F401  (declares the event kinds this app records)
        from apps.pki.services import ca_ready
        from powernode.health import register_readiness_check

        register_readiness_check("ca", ca_ready)
