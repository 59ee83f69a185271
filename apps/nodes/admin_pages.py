"""The instance page of the admin: heartbeat, SDWAN peers, the template's modules, runtimes, latest events.

What a runtime adds (its hosts, what to check while none came) comes from the runtime providers
(``powernode.runtimes``), so this app shows Docker hosts without importing the Docker app.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html

from apps.events.selectors import events_recent
from apps.nodes.models import NodeInstance
from apps.nodes.selectors import heartbeat_of
from powernode import runtimes
from powernode.admin_kit import error_text, run_as_operator
from powernode.errors import ApplicationError


def install_panel(request: HttpRequest, instance: NodeInstance) -> dict[str, Any] | None:
    """The enrollment command (``system_agent_install_command``), for the URL nodes reach the platform at:
    POWERNODE_PUBLIC_URL, else the one this browser used. The token is not in it: it was shown once."""
    if instance.status == NodeInstance.Status.DELETED or not request.user.has_perm("system.instance_view"):
        return None
    base = settings.POWERNODE_PUBLIC_URL or request.build_absolute_uri("/").rstrip("/")
    try:
        return run_as_operator(request, "system_agent_install_command", {"id": str(instance.id), "platform_url": base})
    except ApplicationError as exc:  # e.g. a POWERNODE_PUBLIC_URL with a path: say so on the page
        return {"error": error_text(exc)}


def runtime_panels(instance: NodeInstance) -> dict[str, Any]:
    """Every runtime's part of the instance page, merged: ``hosts`` (newest first) and the first ``hint``."""
    hosts: list[Any] = []
    hint = None
    for provider in runtimes.providers():
        panel = provider.admin_instance_panel(instance)
        hosts += panel.get("hosts", [])
        hint = hint or panel.get("hint")
    return {"hosts": hosts, "hint": hint}


class NodeInstanceOverviewMixin:
    change_form_template = "admin/nodes/nodeinstance/change_form.html"

    @admin.display(description="last heartbeat", ordering="last_heartbeat_at")
    def heartbeat_age(self, obj: NodeInstance) -> str:
        beat = heartbeat_of(obj)
        return format_html('<span class="pn-age pn-age-{}">{}</span>', beat.state, beat.label)

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None):  # noqa: ANN001, ANN201
        instance = self.get_object(request, object_id)
        if instance is not None:
            panels = runtime_panels(instance)
            extra_context = {
                **(extra_context or {}),
                "pn_heartbeat": heartbeat_of(instance),
                "pn_peers": list(instance.sdwan_peers.select_related("network").order_by("created_at")),
                "pn_assignments": list(
                    instance.node_template.assignments.select_related("module").order_by("module__name")
                ),
                "pn_hosts": panels["hosts"],
                "pn_install": install_panel(request, instance),
                "pn_pre_host_hint": panels["hint"],
                "pn_events": events_recent(instance_id=instance.id, limit=10)
                if request.user.has_perm("system.events_view")
                else None,
            }
        return super().change_view(request, object_id, form_url, extra_context)
