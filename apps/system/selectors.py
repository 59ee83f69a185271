"""Platform-wide reads."""

from __future__ import annotations

from typing import Any

from apps.modules.models import ModuleAssignment
from apps.nodes.models import NodeInstance
from apps.pki.services import ca_status
from apps.sdwan.models import SdwanNetwork
from powernode import runtimes


def provisioning_status() -> dict[str, Any]:
    """``platform_provisioning_status``: the CA and Vault, counts, and each runtime's part (Docker: hosts)."""
    status: dict[str, Any] = dict(ca_status())
    status["counts"] = {
        "instances": NodeInstance.objects.exclude(status=NodeInstance.Status.DELETED).count(),
        "networks": SdwanNetwork.objects.count(),
        "assignments": ModuleAssignment.objects.count(),
    }
    for provider in runtimes.providers():
        status.update(provider.status())
    return status
