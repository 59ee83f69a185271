from django.apps import AppConfig


class PkiConfig(AppConfig):
    name = "apps.pki"
    label = "pki"
    verbose_name = "Internal CA"
