from django.apps import AppConfig


class SdwanConfig(AppConfig):
    name = "apps.sdwan"
    label = "sdwan"

    def ready(self) -> None:
        from apps.sdwan import kinds  # noqa: F401  (declares the event kinds this app records)
