"""Platform-wide operator actions."""

from __future__ import annotations

from typing import Any

from apps.system import selectors
from powernode.actors import Actor
from powernode.registry import action
from powernode.schema import obj


@action("platform_provisioning_status", permission="system.instance_view", input_schema=obj(), mutates=False)
def provisioning_status(*, actor: Actor) -> dict[str, Any]:
    """Which CA adapter signs certificates, whether Vault answers, and fleet counts. Answers even when Vault is down."""
    return selectors.provisioning_status()
