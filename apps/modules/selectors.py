"""Reads of the module catalog."""

from __future__ import annotations

from apps.modules.models import Module, ModuleAssignment


def module_list() -> list[Module]:
    return list(Module.objects.order_by("name", "version"))


def modules_for_template(*, template_id) -> list[Module]:  # noqa: ANN001
    return [a.module for a in ModuleAssignment.objects.filter(node_template_id=template_id).select_related("module")]
