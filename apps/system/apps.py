from django.apps import AppConfig
from django.db.models.signals import post_migrate


class SystemConfig(AppConfig):
    name = "apps.system"
    label = "system"

    def ready(self) -> None:
        from django.utils.module_loading import autodiscover_modules

        import apps.system.kinds  # noqa: F401  (declares the event kinds this app records)
        import apps.system.openapi  # noqa: F401  (OpenAPI auth schemes)
        import powernode.checks  # noqa: F401  (registers start-up checks)

        # every app declares its operator actions in <app>/actions.py
        autodiscover_modules("actions")
        post_migrate.connect(_ensure_platform_admins, sender=self)


def _ensure_platform_admins(sender, using="default", **kwargs) -> None:  # noqa: ANN001
    # runs after migrate and after a flush (tests), once auth has made the permissions
    from apps.system.services import platform_admins_group_ensure

    platform_admins_group_ensure()
