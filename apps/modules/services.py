"""Assigning catalog modules to node templates, with the lifecycle and SDWAN preconditions."""

from __future__ import annotations

from django.db import transaction

from apps.events.services import event_record
from apps.modules.models import Module, ModuleAssignment
from apps.nodes.models import NodeInstance
from apps.nodes.services import template_get
from powernode.actors import Actor
from powernode.errors import ConflictError, MissingSdwanPeerError, ModuleNotLiveError, NotFound


def module_get(*, module_id: str) -> Module:
    try:
        return Module.objects.get(pk=module_id)
    except Module.DoesNotExist:
        raise NotFound(f"No module with id {module_id}.", details={"module_id": str(module_id)})


def assignment_event_prefix(module: Module) -> str:
    return f"system.{module.runtime}.module" if module.runtime != Module.Runtime.NONE else "system.module"


@transaction.atomic
def module_assign_to_template(
    *, template_id: str, module_id: str, override: bool = False, actor: Actor
) -> ModuleAssignment:
    """Assign a module; refuses (writing nothing) unless live, or blessed with override."""
    template = template_get(template_id=template_id)
    module = module_get(module_id=module_id)
    _check_lifecycle(module=module, override=override)
    if module.runtime == Module.Runtime.DOCKER:
        _check_every_instance_has_a_peer(template_id=template.id, template_name=template.name)
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
        kind=f"{assignment_event_prefix(module)}.assigned",
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
        kind=f"{assignment_event_prefix(module)}.unassigned",
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


def _check_every_instance_has_a_peer(*, template_id, template_name: str) -> None:  # noqa: ANN001
    peerless = list(
        NodeInstance.objects.filter(node_template_id=template_id, sdwan_peers__isnull=True)
        .exclude(status=NodeInstance.Status.DELETED)
        .order_by("name")
        .values("id", "name")
    )
    if peerless:
        names = ", ".join(row["name"] for row in peerless)
        raise MissingSdwanPeerError(
            f"Instance(s) {names} of template {template_name} have no SDWAN peer: the Docker daemon binds "
            "only to the instance's overlay /128 (never 0.0.0.0). Attach each with "
            "system_sdwan_attach_peer first.",
            details={"instances": [{"id": str(r["id"]), "name": r["name"]} for r in peerless]},
        )
