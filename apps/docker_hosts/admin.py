"""Admin for Docker hosts: status, phase times and the agent's last error; decommission as an admin action."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.docker_hosts import services
from apps.docker_hosts.models import DockerHost
from powernode.actors import Actor
from powernode.errors import ApplicationError


@admin.register(DockerHost)
class DockerHostAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "node_instance",
        "api_endpoint",
        "status",
        "version",
        "last_error_short",
        "created_at",
    ]
    list_filter = ["status", "network"]
    search_fields = ["id", "node_instance__name", "overlay_address", "server_cert_serial"]
    exclude = ["client_key_encrypted"]
    readonly_fields = [f.name for f in DockerHost._meta.fields if f.name != "client_key_encrypted"]
    actions = ["decommission"]

    @admin.display(description="last error")
    def last_error_short(self, obj: DockerHost) -> str:
        return (obj.last_error[:80] + "…") if len(obj.last_error) > 80 else obj.last_error

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # hosts are made by the handshake only

    def has_delete_permission(self, request: HttpRequest, obj: DockerHost | None = None) -> bool:
        return False  # decommission instead: it revokes the certificates

    @admin.action(description="Decommission the selected Docker runtimes", permissions=["change"])
    def decommission(self, request: HttpRequest, queryset: QuerySet[DockerHost]) -> None:
        if not request.user.has_perm("system.docker_provision"):
            self.message_user(request, "You lack system.docker_provision.", messages.ERROR)
            return
        for host in queryset:
            try:
                services.docker_host_request_decommission(host_id=host.id, actor=Actor.for_user(request.user))
            except ApplicationError as exc:
                self.message_user(request, f"{host.id}: {exc.message}", messages.ERROR)
            else:
                self.message_user(request, f"{host.id}: decommission requested.")
