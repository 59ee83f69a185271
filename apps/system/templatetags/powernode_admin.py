"""Template tags for the operator pages in the admin: the fleet dashboard and status badges."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString

from apps.system import dashboard

register = template.Library()


@register.simple_tag
def fleet_dashboard(user: Any) -> dashboard.FleetSummary | None:
    """The admin index's fleet summary, for operators allowed to see the fleet (else nothing)."""
    if not (user.has_perm("system.instance_view") or user.has_perm("system.docker_view")):
        return None
    return dashboard.fleet_summary()


@register.simple_tag
def status_badge(status: str, label: str = "") -> SafeString:
    return format_html('<span class="pn-badge pn-{}" title="{}">{}</span>', status, label or status, status)


@register.filter
def heartbeat_badge(heartbeat: dashboard.Heartbeat) -> SafeString:
    return format_html('<span class="pn-age pn-age-{}">{}</span>', heartbeat.state, heartbeat.label)


@register.filter
def lookup(mapping: dict, key: Any) -> Any:
    return mapping.get(str(key), "") if mapping else ""


@register.filter
def kind_class(kind: str) -> str:
    """A colour family for an event kind: failures red, endings grey, successes green."""
    if kind.endswith(".failed"):
        return "bad"
    if kind.endswith((".decommissioned", ".unassigned", ".decommission.requested")):
        return "end"
    if kind.endswith((".ready", ".provisioned", ".assigned", ".attached")):
        return "good"
    return "info"


@register.filter
def ago(moment: Any) -> str:
    """ "12s ago", "5 min ago": second-level precision where the admin's timesince says "0 minutes"."""
    from django.utils import timezone

    return dashboard.humanize_age(timezone.now() - moment) if moment else "never"
