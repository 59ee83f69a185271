"""Start-up checks: refuse to run production without the secrets it needs."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, register


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
