"""Reading events: newest first, optionally by kind prefix, instance or host."""

from __future__ import annotations

from django.db.models import QuerySet

from apps.events.models import Event

MAX_LIMIT = 500


def events_recent(
    *, kind_prefix: str = "", limit: int = 50, instance_id: str | None = None, host_id: str | None = None
) -> list[Event]:
    qs: QuerySet[Event] = Event.objects.all()
    if kind_prefix:
        qs = qs.filter(kind__startswith=kind_prefix)
    if instance_id:
        qs = qs.filter(instance_id=instance_id)
    if host_id:
        qs = qs.filter(host_id=host_id)
    return list(qs.order_by("-occurred_at", "-id")[: min(limit, MAX_LIMIT)])
