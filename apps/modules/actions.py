"""Operator actions for the module catalog and assignments."""

from __future__ import annotations

from typing import Any

from apps.modules import selectors, services
from apps.modules.serializers import ModuleAssignmentSerializer, ModuleSerializer
from powernode.actors import Actor
from powernode.registry import action
from powernode.schema import boolean, obj, uuid_


@action("system_list_modules", permission="system.instance_view", input_schema=obj(), mutates=False)
def list_modules(*, actor: Actor) -> dict[str, Any]:
    """The module catalog with lifecycle state and blessing."""
    # ModuleSerializer's fields and values, without building a serializer per call (the ids are the only
    # values it changes: UUIDs as text); tests/core/test_assignment.py compares the two
    modules = selectors.module_values(fields=ModuleSerializer.Meta.fields)
    return {"modules": [{**module, "id": str(module["id"])} for module in modules]}


@action(
    "system_assign_module_to_template",
    permission="system.docker_provision",
    input_schema=obj(
        required={"template_id": uuid_("node template id"), "module_id": uuid_("module id")},
        optional={"override": boolean("assign a blessed module that is not live yet")},
    ),
)
def assign_module(*, actor: Actor, template_id: str, module_id: str, override: bool = False) -> dict[str, Any]:
    """Assign a module to a template. docker-engine needs every instance of it on an SDWAN network."""
    assignment = services.module_assign_to_template(
        template_id=template_id, module_id=module_id, override=override, actor=actor
    )
    return {"assignment": ModuleAssignmentSerializer(assignment).data}


@action(
    "system_unassign_module_from_template",
    permission="system.docker_provision",
    input_schema=obj(required={"template_id": uuid_("node template id"), "module_id": uuid_("module id")}),
)
def unassign_module(*, actor: Actor, template_id: str, module_id: str) -> dict[str, Any]:
    """Remove a module from a template. Running Docker hosts stay until decommissioned."""
    assignment = services.module_unassign_from_template(template_id=template_id, module_id=module_id, actor=actor)
    return {"unassigned": ModuleAssignmentSerializer(assignment).data}
