from django.apps import AppConfig


class ModulesConfig(AppConfig):
    name = "apps.modules"
    label = "modules"

    def ready(self) -> None:
        from apps.modules import kinds  # noqa: F401  (declares the event kinds this app records)
