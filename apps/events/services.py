"""Recording events. Call inside the transaction of the change being recorded.

Every state change records an event in its transaction, so recording one is also where watchers learn of
the change: :func:`event_record` notifies the watch topics the event names (``powernode.watch``), delivered
at commit and never on rollback. A topic woken for a change that leaves a desired state as it was costs
the woken request one read; a change that notified nobody would leave an agent a whole interval behind.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.events.models import Event
from powernode import event_kinds, watch
from powernode.actors import Actor


def event_record(
    *,
    kind: str,
    actor: Actor | None = None,
    instance_id: uuid.UUID | str | None = None,
    host_id: str = "",
    data: dict[str, Any] | None = None,
) -> Event:
    """Write one event row. Must run inside the writer's atomic block (it is a change record).

    ``kind`` must be declared in the recording app's ``kinds.py`` (``UndeclaredEventKind`` otherwise).
    """
    event_kinds.check(kind)
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError(f"event {kind!r} must be recorded inside the transaction of its change")
    actor = actor or Actor.system()
    watch.notify(watch_topics(kind=kind, instance_id=instance_id, data=data or {}))
    return Event.objects.create(
        kind=kind,
        occurred_at=timezone.now(),
        actor=actor.label,
        actor_user=actor.user,
        instance_id=instance_id,
        host_id=host_id or "",
        data=data or {},
    )


#: kinds whose change reaches the SDWAN hub's desired state (networks, peers and their keys, grants)
_HUB_PREFIXES = ("system.sdwan.", "system.instance.deleted")


def watch_topics(*, kind: str, instance_id: uuid.UUID | str | None, data: dict[str, Any]) -> set[str]:
    """The watch topics an event wakes: its instance, the template or network its data names (a module
    assignment names its template: that template's instances wake), and the hub for SDWAN changes."""
    topics: set[str] = set()
    if instance_id:
        topics.add(watch.instance_topic(instance_id))
    if data.get("template_id"):
        topics.add(watch.template_topic(data["template_id"]))
    if data.get("network_id") and not instance_id:
        topics.add(watch.network_topic(data["network_id"]))
    if kind.startswith(_HUB_PREFIXES):
        topics.add(watch.HUB)
    return topics
