"""System checks of the internal CA: the local CA refuses a platform spread over several hosts."""

from __future__ import annotations

from django.core.checks import Error, register


@register()
def local_ca_single_host_check(app_configs, **kwargs):  # noqa: ANN001 - Django's check signature
    from apps.pki.services import local_ca_refusal

    refusal = local_ca_refusal()
    if not refusal:
        return []
    return [
        Error(
            refusal,
            hint="Several platform hosts need one CA they all reach: Vault/OpenBao (docs/DEPLOYMENT.md).",
            id="pki.E001",
        )
    ]
