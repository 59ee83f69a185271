"""The Docker runtime's part of the operator overviews: the fleet overview (admin index) and the instance page.

The runtime provider (``DockerRuntime.fleet`` / ``admin_instance_panel``) answers with these, so
``system`` and ``nodes`` show Docker hosts without importing this app.
"""

from __future__ import annotations

from typing import Any

from apps.docker_hosts import kinds
from apps.docker_hosts.models import DockerHost
from apps.docker_hosts.selectors import host_status_counts
from apps.docker_hosts.timeline import pre_host_hint
from apps.events.selectors import events_recent


def docker_fleet(*, instance_ids: list[Any], failed_limit: int = 8) -> dict[str, Any]:
    """Hosts by status, the newest host of each listed instance, the latest failures: bounded queries."""
    counts = host_status_counts()
    labels = dict(DockerHost.Status.choices)
    hosts_by_instance = {
        h.node_instance_id: h
        for h in DockerHost.objects.filter(node_instance__in=instance_ids).order_by("created_at")
    }  # newest host per instance wins
    failed_hosts = list(
        DockerHost.objects.filter(status=DockerHost.Status.FAILED)
        .select_related("node_instance")
        .order_by("-failed_at")[:failed_limit]
    )
    # failures of hosts listed above are not repeated; failures before any host (wants_cert) are kept
    shown = {h.id for h in failed_hosts}
    failed_events = [e for e in events_recent(kind_prefix=kinds.FAILED, limit=failed_limit) if e.host_id not in shown]
    return {
        "hosts_by_status": [(status, labels[status], n) for status, n in counts.items()],
        "hosts_by_instance": hosts_by_instance,
        "failed_hosts": failed_hosts,
        "failed_events": failed_events,
    }


def docker_instance_panel(instance: Any, *, limit: int = 5) -> dict[str, Any]:
    """The instance page's Docker part: its newest hosts, and the wants_cert hint while none came yet."""
    return {
        "hosts": list(DockerHost.objects.filter(node_instance=instance).order_by("-created_at")[:limit]),
        "hint": pre_host_hint(instance),
    }
