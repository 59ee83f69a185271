"""Platform-wide operator actions."""

from __future__ import annotations

from typing import Any

from apps.system import selectors, services
from powernode.actors import Actor
from powernode.registry import action
from powernode.schema import obj, uuid_


@action("platform_provisioning_status", permission="system.instance_view", input_schema=obj(), mutates=False)
def provisioning_status(*, actor: Actor) -> dict[str, Any]:
    """Which CA adapter signs certificates, whether Vault answers, and fleet counts. Answers even when Vault is down."""
    return selectors.provisioning_status()


@action(
    "system_delete_instance",
    permission="system.instance_manage",
    input_schema=obj(required={"id": uuid_("node instance id")}),
)
def delete_instance(*, actor: Actor, id: str) -> dict[str, Any]:  # noqa: A002 - the contract's field name
    """Delete a node instance, e.g. one whose node is gone: its agent token stops working, its Docker host is
    decommissioned at once with every certificate revoked, and it is detached from its SDWAN networks."""
    return {"deleted": services.instance_delete_everywhere(instance_id=id, actor=actor)}
