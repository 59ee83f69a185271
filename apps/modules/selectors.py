"""Reads of the module catalog."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from apps.modules.models import Module, ModuleAssignment
from powernode.db import all_values


def module_values(*, fields: Sequence[str]) -> list[dict[str, Any]]:
    """The catalog's ``fields``, by name and version: every operator's listing reads it, so the SQL is
    built once (``powernode.db.all_values``)."""
    return all_values(Module, fields, order_by=("name", "version"))


def modules_for_template(*, template_id) -> list[Module]:  # noqa: ANN001
    return [a.module for a in ModuleAssignment.objects.filter(node_template_id=template_id).select_related("module")]
