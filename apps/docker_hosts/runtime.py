"""The Docker runtime as the platform sees it: the provider ``DockerHostsConfig.ready()`` registers.

``nodes`` (heartbeat, instance deletion, instance output), ``modules`` (assignment) and ``system``
(status) reach Docker only through this provider (powernode.runtimes), never by importing this app.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from apps.docker_hosts import kinds, selectors, services
from apps.docker_hosts.fleet import docker_fleet, docker_instance_panel
from apps.docker_hosts.phases import REPORTED_PHASES
from powernode.actors import Actor
from powernode.runtimes import RuntimeProvider


class DockerRuntime(RuntimeProvider):
    name = selectors.RUNTIME
    label = "Docker Engine"
    event_prefix = kinds.PREFIX
    phases = REPORTED_PHASES
    quick_prefixes = kinds.QUICK_PREFIXES
    instance_field_names = ("docker_host_id",)

    def heartbeat_sql(self) -> str:
        return selectors.latest_host_union_part()

    def heartbeat_orders(self, *, rows: list[tuple[Any, ...]], assigned_at: datetime | None) -> list[dict[str, Any]]:
        host = selectors.host_from_union_row(rows[0]) if rows else None
        in_flight = bool(rows and rows[0][4])  # an unrevoked replaced server certificate
        return selectors.runtime_orders(host=host, assigned_at=assigned_at, renewal_in_flight=in_flight)

    def check_assignment(self, *, template_id: Any, template_name: str) -> None:
        services.docker_assignment_check(template_id=template_id, template_name=template_name)

    def end_for_instance(self, *, instance: Any, actor: Actor) -> None:
        services.docker_hosts_end_for_instance(instance=instance, actor=actor)

    def peer_in_use(self, *, instance_id: Any, overlay_address: str) -> list[dict[str, Any]]:
        return selectors.hosts_bound_to(instance_id=instance_id, overlay_address=overlay_address)

    def instance_fields(self, instance: Any) -> dict[str, Any]:
        return {"docker_host_id": selectors.live_host_id(instance_id=instance.pk)}

    def status(self) -> dict[str, Any]:
        return {"docker_hosts": selectors.host_status_counts()}

    def fleet(self, *, instance_ids: list[Any]) -> dict[str, Any]:
        return docker_fleet(instance_ids=instance_ids)

    def admin_instance_panel(self, instance: Any) -> dict[str, Any]:
        return docker_instance_panel(instance)
