"""The fleet overview (the admin index): instances by heartbeat, each runtime's hosts and failures, events.

Composed from the apps' selectors and the runtime providers (``powernode.runtimes``): ``system`` shows
Docker hosts without importing the Docker app. Reads only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db.models import Q
from django.utils import timezone

from apps.events.models import Event
from apps.events.selectors import events_recent
from apps.nodes.models import NodeInstance
from apps.nodes.selectors import Heartbeat, heartbeat_of, instance_names, live_instances, stale_after
from powernode import runtimes


@dataclass
class InstanceRow:
    instance: NodeInstance
    heartbeat: Heartbeat
    host: Any | None


@dataclass
class FleetSummary:
    hosts_by_status: list[tuple[str, str, int]]
    hosts_total: int
    instances_total: int
    instances_stale: int
    instances_never: int
    instances: list[InstanceRow]
    failed_hosts: list[Any]
    failed_events: list[Event]
    latest_events: list[Event]
    instance_names: dict[str, str] = field(default_factory=dict)


def _runtime_fleets(instance_ids: list[Any]) -> dict[str, Any]:
    """Every runtime's part of the overview, merged (one runtime today: Docker)."""
    merged: dict[str, Any] = {"hosts_by_status": [], "hosts_by_instance": {}, "failed_hosts": [], "failed_events": []}
    for provider in runtimes.providers():
        part = provider.fleet(instance_ids=instance_ids)
        merged["hosts_by_status"] += part.get("hosts_by_status", [])
        merged["failed_hosts"] += part.get("failed_hosts", [])
        merged["failed_events"] += part.get("failed_events", [])
        for instance_id, host in part.get("hosts_by_instance", {}).items():
            merged["hosts_by_instance"].setdefault(instance_id, host)
    return merged


def fleet_summary(*, instance_limit: int = 15, event_limit: int = 12) -> FleetSummary:
    """What the admin index shows: bounded queries whatever the fleet size (counts, then short lists)."""
    now = timezone.now()
    live = live_instances()
    threshold = now - stale_after()
    # Worst first: never seen, then the longest silent; fresh ones fill the rest of the table.
    worst = list(
        live.filter(Q(last_heartbeat_at__isnull=True) | Q(last_heartbeat_at__lt=threshold))
        .select_related("node_template")
        .order_by("last_heartbeat_at", "name")[:instance_limit]
    )
    if len(worst) < instance_limit:
        worst += list(
            live.filter(last_heartbeat_at__gte=threshold)
            .select_related("node_template")
            .order_by("-last_heartbeat_at", "name")[: instance_limit - len(worst)]
        )
    fleets = _runtime_fleets([i.id for i in worst])
    latest = events_recent(limit=event_limit)
    return FleetSummary(
        hosts_by_status=fleets["hosts_by_status"],
        hosts_total=sum(n for _, _, n in fleets["hosts_by_status"]),
        instances_total=live.count(),
        instances_stale=live.filter(last_heartbeat_at__lt=threshold).count(),
        instances_never=live.filter(last_heartbeat_at__isnull=True).count(),
        instances=[InstanceRow(i, heartbeat_of(i, now=now), fleets["hosts_by_instance"].get(i.id)) for i in worst],
        failed_hosts=fleets["failed_hosts"],
        failed_events=fleets["failed_events"],
        latest_events=latest,
        instance_names=instance_names(e.instance_id for e in [*fleets["failed_events"], *latest]),
    )
