"""Operator actions for node templates and instances."""

from __future__ import annotations

from typing import Any

from apps.nodes import services
from apps.nodes.serializers import NodeInstanceSerializer, NodeTemplateSerializer
from powernode.actors import Actor
from powernode.registry import action
from powernode.schema import name, obj, string, uuid_


@action(
    "system_create_node_template",
    permission="system.instance_manage",
    input_schema=obj(
        required={"name": name("unique template name")},
        optional={"description": string("free text", max_length=2000, min_length=0)},
    ),
    example={"name": "docker-nodes", "description": "Instances that run Docker Engine"},
)
def create_node_template(*, actor: Actor, name: str, description: str = "") -> dict[str, Any]:
    """Create a node template: the unit modules are assigned to."""
    template = services.template_create(name=name, description=description, actor=actor)
    return {"template": NodeTemplateSerializer(template).data}


@action(
    "system_provision_instance",
    permission="system.instance_manage",
    input_schema=obj(required={"template_id": uuid_("node template id"), "name": name("unique instance name")}),
)
def provision_instance(*, actor: Actor, template_id: str, name: str) -> dict[str, Any]:
    """Create a node instance from a template; returns the agent token once (it is stored hashed)."""
    result = services.instance_provision(template_id=template_id, name=name, actor=actor)
    return {"instance": NodeInstanceSerializer(result.instance).data, "agent_token": result.agent_token}


@action(
    "system_get_instance",
    permission="system.instance_view",
    input_schema=obj(required={"id": uuid_("node instance id")}),
    mutates=False,
)
def get_instance(*, actor: Actor, id: str) -> dict[str, Any]:  # noqa: A002 - the contract's field name
    """One node instance with its template id, SDWAN peers and docker host id."""
    return {"instance": NodeInstanceSerializer(services.instance_get(instance_id=id)).data}
