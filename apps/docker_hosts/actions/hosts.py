"""Operator actions on managed Docker hosts themselves: list them, decommission one."""

from __future__ import annotations

from typing import Any

from apps.docker_hosts import selectors, services
from apps.docker_hosts.models import DockerHost
from apps.docker_hosts.serializers import DockerHostSerializer
from powernode.actors import Actor
from powernode.registry import action
from powernode.schema import enum, obj, string, uuid_

HOST_ID = string("Docker host id (host-<uuid>)", max_length=64, pattern=r"^host-[0-9a-f-]{36}$")


@action(
    "docker_list_hosts",
    permission="system.docker_view",
    input_schema=obj(
        optional={
            "status": enum([s.value for s in DockerHost.Status], "only hosts in this status"),
            "network_id": uuid_("only hosts on this SDWAN network"),
        }
    ),
    mutates=False,
)
def list_hosts(*, actor: Actor, status: str | None = None, network_id: str | None = None) -> dict[str, Any]:
    """Managed Docker hosts, newest first, with their API endpoint on the overlay and status."""
    hosts = selectors.host_list(status=status, network_id=network_id)
    return {"hosts": DockerHostSerializer(hosts, many=True).data}


@action(
    "system_decommission_docker_runtime",
    permission="system.docker_provision",
    input_schema=obj(required={"host_id": HOST_ID}),
)
def decommission_docker_runtime(*, actor: Actor, host_id: str) -> dict[str, Any]:
    """Stop a managed Docker daemon: the host goes to decommissioning; the agent is ordered to remove it."""
    host = services.docker_host_request_decommission(host_id=host_id, actor=actor)
    return {"host": DockerHostSerializer(host).data}
