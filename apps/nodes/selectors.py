"""Reads of templates and instances, and the one stale-agent rule (1.5 × the heartbeat interval).

The fleet overview, the admin pages, the instance API output and the runtimes all ask here whether an
agent is fresh; nothing else multiplies the interval.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from apps.nodes.models import NodeInstance
from powernode.admin_kit import humanize_age

#: an agent is stale after this many heartbeat intervals without a call (one late beat is not an outage)
STALE_AFTER_INTERVALS = 1.5


def heartbeat_interval_s() -> int:
    """How often agents call in (seconds); the platform tells them in every heartbeat answer."""
    return int(settings.POWERNODE_HEARTBEAT_INTERVAL_S)


def stale_after() -> dt.timedelta:
    """How long an agent may stay silent before it is stale."""
    return dt.timedelta(seconds=STALE_AFTER_INTERVALS * heartbeat_interval_s())


@dataclass(frozen=True)
class Heartbeat:
    """How fresh an instance's agent is: ``state`` is fresh, stale or never."""

    age: dt.timedelta | None
    state: str

    @property
    def label(self) -> str:
        return humanize_age(self.age)

    @property
    def stale(self) -> bool:
        """Not heard from within :func:`stale_after` (never seen counts as stale)."""
        return self.state != "fresh"


def heartbeat_of(instance: NodeInstance, *, now: dt.datetime | None = None) -> Heartbeat:
    if instance.last_heartbeat_at is None:
        return Heartbeat(age=None, state="never")
    age = (now or timezone.now()) - instance.last_heartbeat_at
    return Heartbeat(age=age, state="stale" if age > stale_after() else "fresh")


def heartbeat_counts(*, now: dt.datetime | None = None) -> dict[str, int]:
    """Live instances by how fresh their agent is (fresh, stale, never), in one query: the /metrics gauge."""
    cutoff = (now or timezone.now()) - stale_after()
    counts = live_instances().aggregate(
        fresh=Count("id", filter=Q(last_heartbeat_at__gte=cutoff)),
        stale=Count("id", filter=Q(last_heartbeat_at__lt=cutoff)),
        never=Count("id", filter=Q(last_heartbeat_at__isnull=True)),
    )
    return {state: int(n or 0) for state, n in counts.items()}


def live_instances() -> QuerySet[NodeInstance]:
    """Every instance that is not deleted."""
    return NodeInstance.objects.exclude(status=NodeInstance.Status.DELETED)


def instance_names(ids: Iterable[Any]) -> dict[str, str]:
    """instance id (text) → name, in one query (for pages listing events or hosts by instance id)."""
    wanted = {i for i in ids if i}
    if not wanted:
        return {}
    return {str(pk): name for pk, name in NodeInstance.objects.filter(pk__in=wanted).values_list("id", "name")}


def instance_id_by_name(name: str) -> Any | None:
    return NodeInstance.objects.filter(name=name).values_list("id", flat=True).first()
