from django.apps import AppConfig


class SdwanConfig(AppConfig):
    name = "apps.sdwan"
    label = "sdwan"
