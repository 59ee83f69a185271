from django.apps import AppConfig


class PkiConfig(AppConfig):
    name = "apps.pki"
    label = "pki"
    verbose_name = "Internal CA"

    def ready(self) -> None:
        from apps.pki import kinds  # noqa: F401  (declares the event kinds this app records)
