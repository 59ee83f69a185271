"""Who is acting: an operator (a Django user), an agent (for its instance) or the platform itself."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Actor:
    label: str
    user: Any = None  # django User for operators
    instance_id: Any = None  # for agents

    @classmethod
    def system(cls) -> Actor:
        return cls(label="system")

    @classmethod
    def for_user(cls, user: Any) -> Actor:
        return cls(label=user.get_username(), user=user)

    @classmethod
    def for_agent(cls, instance: Any) -> Actor:
        return cls(label=f"agent:{instance.name}", instance_id=instance.id)

    @classmethod
    def for_hub(cls, name: str) -> Actor:
        return cls(label=f"hub:{name}")
