"""Admin for Docker hosts: status, phase times and the agent's last error; decommission as an admin action.

The live host page (timeline, hint, containers) and the decommission confirmation are in
apps/docker_hosts/admin_pages.py; decommission runs the system_decommission_docker_runtime action.
"""

from __future__ import annotations

from django.contrib import admin

from apps.docker_hosts.admin_pages import DockerHostPagesMixin
from apps.docker_hosts.models import DockerHost
from powernode.admin_kit import ChangedThroughActions


@admin.register(DockerHost)
class DockerHostAdmin(ChangedThroughActions, DockerHostPagesMixin, admin.ModelAdmin):
    list_display = [
        "short_id",  # the id, shortened (full id in its tooltip and on the host page)
        "status_badge",
        "node_instance",
        "endpoint",
        "network_name",
        "version",
        "last_error_short",
        "created_at",
    ]
    list_filter = ["status", "network"]
    list_select_related = ["node_instance", "network"]
    search_fields = ["id", "node_instance__name", "overlay_address", "server_cert_serial"]
    exclude = ["client_key_encrypted"]
    readonly_fields = [f.name for f in DockerHost._meta.fields if f.name != "client_key_encrypted"]
    actions = ["decommission"]

    @admin.display(description="last error")
    def last_error_short(self, obj: DockerHost) -> str:
        return (obj.last_error[:80] + "…") if len(obj.last_error) > 80 else obj.last_error

    # no add, change or delete (ChangedThroughActions): hosts are made by the handshake only, and
    # decommission (which revokes the certificates) replaces deletion
    # decommission (the action with its confirmation page) comes from DockerHostPagesMixin
