"""Platform-wide reads."""

from __future__ import annotations

from typing import Any

from django.apps import apps as django_apps
from django.conf import settings

from apps.modules.models import ModuleAssignment
from apps.nodes.models import NodeInstance
from apps.sdwan.models import SdwanNetwork


def provisioning_status() -> dict[str, Any]:
    status: dict[str, Any]
    if django_apps.is_installed("apps.pki"):
        from apps.pki.services import ca_status

        status = dict(ca_status())
    else:
        configured = bool(getattr(settings, "VAULT_ADDR", "") and getattr(settings, "VAULT_TOKEN", ""))
        status = {
            "ca_adapter": "VaultCaAdapter" if configured else "LocalCaAdapter",
            "vault": {"configured": configured, "reachable": None},
        }
    status["counts"] = {
        "instances": NodeInstance.objects.exclude(status=NodeInstance.Status.DELETED).count(),
        "networks": SdwanNetwork.objects.count(),
        "assignments": ModuleAssignment.objects.count(),
    }
    if django_apps.is_installed("apps.docker_hosts"):
        from apps.docker_hosts.selectors import host_status_counts

        status["docker_hosts"] = host_status_counts()
    return status
