"""Assigning catalog modules to node templates: the lifecycle gate, and each runtime's own preconditions."""

from __future__ import annotations

from django.db import transaction

from apps.events.services import event_record
from apps.modules.kinds import assignment_kind
from apps.modules.models import Module, ModuleAssignment
from apps.nodes.services import template_get
from powernode import runtimes
from powernode.actors import Actor
from powernode.errors import ConflictError, ModuleNotLiveError, NotFound


def module_get(*, module_id: str) -> Module:
    try:
        return Module.objects.get(pk=module_id)
    except Module.DoesNotExist:
        raise NotFound(f"No module with id {module_id}.", details={"module_id": str(module_id)})


@transaction.atomic
def module_assign_to_template(
    *, template_id: str, module_id: str, override: bool = False, actor: Actor
) -> ModuleAssignment:
    """Assign a module; refuses (writing nothing) unless live, or blessed with override, or while the
    module's runtime says the template is not ready for it (Docker: an instance without an SDWAN peer)."""
    template = template_get(template_id=template_id)
    module = module_get(module_id=module_id)
    _check_lifecycle(module=module, override=override)
    runtime = runtimes.get(module.runtime)
    if runtime is not None:
        runtime.check_assignment(template_id=template.id, template_name=template.name)
    if ModuleAssignment.objects.filter(node_template=template, module=module).exists():
        raise ConflictError(
            f"{module.name} is already assigned to template {template.name}.",
            details={"template_id": str(template.id), "module_id": str(module.id)},
        )
    assignment = ModuleAssignment.objects.create(
        node_template=template,
        module=module,
        override=module.lifecycle_state != Module.Lifecycle.LIVE,
        assigned_by=actor.user,
    )
    event_record(
        kind=assignment_kind(module.runtime, "assigned"),
        actor=actor,
        data={
            "assignment_id": str(assignment.id),
            "template_id": str(template.id),
            "module_id": str(module.id),
            "module": module.name,
            "override": assignment.override,
        },
    )
    return assignment


@transaction.atomic
def module_unassign_from_template(*, template_id: str, module_id: str, actor: Actor) -> ModuleAssignment:
    """Remove an assignment. Running runtimes stay until an explicit decommission; new handshakes stop."""
    template = template_get(template_id=template_id)
    module = module_get(module_id=module_id)
    assignment = ModuleAssignment.objects.filter(node_template=template, module=module).first()
    if assignment is None:
        raise NotFound(
            f"{module.name} is not assigned to template {template.name}.",
            details={"template_id": str(template.id), "module_id": str(module.id)},
        )
    assignment_id = assignment.id
    assignment.delete()
    assignment.id = assignment_id
    event_record(
        kind=assignment_kind(module.runtime, "unassigned"),
        actor=actor,
        data={"template_id": str(template.id), "module_id": str(module.id), "module": module.name},
    )
    return assignment


def _check_lifecycle(*, module: Module, override: bool) -> None:
    if module.lifecycle_state == Module.Lifecycle.LIVE:
        return
    if module.blessed and override and module.lifecycle_state != Module.Lifecycle.RETIRED:
        return
    hint = (
        "It is blessed: pass override: true to assign it anyway."
        if module.blessed and module.lifecycle_state != Module.Lifecycle.RETIRED
        else "Promote it to live first."
    )
    raise ModuleNotLiveError(
        f"Module {module.name} {module.version} is {module.lifecycle_state}, not live. {hint}",
        details={
            "module_id": str(module.id),
            "lifecycle_state": module.lifecycle_state,
            "blessed": module.blessed,
        },
    )

