"""Recording events. Call inside the transaction of the change being recorded."""

from __future__ import annotations

import uuid
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.events.models import Event
from powernode import event_kinds
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
    return Event.objects.create(
        kind=kind,
        occurred_at=timezone.now(),
        actor=actor.label,
        actor_user=actor.user,
        instance_id=instance_id,
        host_id=host_id or "",
        data=data or {},
    )
