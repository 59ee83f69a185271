from django.apps import AppConfig


class SystemConfig(AppConfig):
    name = "apps.system"
    label = "system"

    def ready(self) -> None:
        from django.utils.module_loading import autodiscover_modules

        import apps.system.openapi  # noqa: F401  (OpenAPI auth schemes)
        import powernode.checks  # noqa: F401  (registers start-up checks)

        # every app declares its operator actions in <app>/actions.py
        autodiscover_modules("actions")
