"""Template tags every app's admin pages use: status and heartbeat badges, event-kind colours, ages.

Part of the kernel (``powernode`` is an installed app for this): imports no app, so a domain app's
admin may use these without reaching into ``apps.system``.
"""

from __future__ import annotations

from typing import Any

from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

import powernode
from powernode.admin_kit import humanize_age

register = template.Library()


@register.simple_tag
def platform_version() -> str:
    """The running version (powernode.__version__), shown beside the admin's brand."""
    return powernode.__version__


@register.simple_tag
def status_badge(status: str, label: str = "") -> SafeString:
    return format_html('<span class="pn-badge pn-{}" title="{}">{}</span>', status, label or status, status)


@register.filter
def heartbeat_badge(heartbeat: Any) -> SafeString:
    """A heartbeat (``state`` fresh/stale/never and a ``label``) as a coloured age."""
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
    return humanize_age(timezone.now() - moment) if moment else "never"
