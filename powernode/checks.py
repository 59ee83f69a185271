"""Start-up checks: refuse to run production without the secrets it needs; ``check --deploy`` names what a
deployment left at a default it should choose."""

from __future__ import annotations

from django.conf import settings
from django.core import checks
from django.core.checks import Error, Tags, register


@register(Tags.security, deploy=True)
def allowed_hosts_check(app_configs, **kwargs):  # noqa: ANN001 - Django's check signature
    if not settings.DEBUG and getattr(settings, "POWERNODE_ALLOWED_HOSTS_DEFAULTED", False):
        return [
            checks.Warning(
                "DJANGO_ALLOWED_HOSTS is not set: the platform answers only requests for localhost and 127.0.0.1.",
                hint="Set it to the names agents and operators use, e.g. DJANGO_ALLOWED_HOSTS=powernode.example.net "
                "(health checks need no entry: /healthz, /readyz and /metrics accept any Host).",
                id="powernode.W001",
            )
        ]
    return []


@register()
def encryption_key_check(app_configs, **kwargs):  # noqa: ANN001 - Django's check signature
    if not settings.DEBUG and not settings.POWERNODE_ENCRYPTION_KEY:
        return [
            Error(
                "POWERNODE_ENCRYPTION_KEY is not set: production refuses to store private keys with a "
                "development key.",
                hint="Generate one with: python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())' and set it in the environment.",
                id="powernode.E001",
            )
        ]
    return []
