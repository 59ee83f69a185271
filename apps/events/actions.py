"""The recent_events action."""

from __future__ import annotations

from typing import Any

from apps.events.selectors import MAX_LIMIT, events_recent
from apps.events.serializers import EventSerializer
from powernode.actors import Actor
from powernode.registry import action
from powernode.schema import integer, obj, string


@action(
    "recent_events",
    permission="system.events_view",
    input_schema=obj(
        optional={
            "kind_prefix": string("e.g. system.docker", max_length=120, min_length=0),
            "limit": integer(f"default 50, at most {MAX_LIMIT}", minimum=1, maximum=MAX_LIMIT),
        }
    ),
    mutates=False,
)
def recent_events(*, actor: Actor, kind_prefix: str = "", limit: int = 50) -> dict[str, Any]:
    """Events newest first, optionally only kinds starting with kind_prefix."""
    return {"events": EventSerializer(events_recent(kind_prefix=kind_prefix, limit=limit), many=True).data}
