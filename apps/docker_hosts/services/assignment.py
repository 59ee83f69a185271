"""The precondition for assigning docker-engine to a node template (the runtime provider's check)."""

from __future__ import annotations

from typing import Any

from apps.nodes.models import NodeInstance
from powernode.errors import MissingSdwanPeerError


def docker_assignment_check(*, template_id: Any, template_name: str) -> None:
    """Refuse (``MissingSdwanPeerError``, 409) while a live instance of the template has no SDWAN peer:
    the daemon binds only to the instance's overlay /128, so a peerless instance could never run it."""
    peerless = list(
        NodeInstance.objects.filter(node_template_id=template_id, sdwan_peers__isnull=True)
        .exclude(status=NodeInstance.Status.DELETED)
        .order_by("name")
        .values("id", "name")
    )
    if peerless:
        names = ", ".join(row["name"] for row in peerless)
        raise MissingSdwanPeerError(
            f"Instance(s) {names} of template {template_name} have no SDWAN peer: the Docker daemon binds "
            "only to the instance's overlay /128 (never 0.0.0.0). Attach each with "
            "system_sdwan_attach_peer first.",
            details={"instances": [{"id": str(r["id"]), "name": r["name"]} for r in peerless]},
        )
