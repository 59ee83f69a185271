"""The fleet overview tag of the admin index (the badges and filters are the kernel's ``powernode_admin``)."""

from __future__ import annotations

from typing import Any

from django import template

from apps.system import dashboard

register = template.Library()


@register.simple_tag
def fleet_dashboard(user: Any) -> dashboard.FleetSummary | None:
    """The admin index's fleet summary, for operators allowed to see the fleet (else nothing)."""
    if not (user.has_perm("system.instance_view") or user.has_perm("system.docker_view")):
        return None
    return dashboard.fleet_summary()
