"""Admin for Docker hosts: status, phase times and the agent's last error; decommission as an admin action.

The live host page (timeline, hint, containers) and the decommission confirmation are in
apps/docker_hosts/admin_pages.py; decommission runs the system_decommission_docker_runtime action.
"""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.docker_hosts.admin_pages import DockerHostPagesMixin, cert_expiry_html
from apps.docker_hosts.models import DockerHost, RegistryCredential
from apps.sdwan.selectors import tunnel_annotations, tunnel_for, tunnel_state
from powernode.admin_kit import ChangedThroughActions


@admin.register(DockerHost)
class DockerHostAdmin(ChangedThroughActions, DockerHostPagesMixin, admin.ModelAdmin):
    list_display = [
        "short_id",  # the id, shortened (full id in its tooltip and on the host page)
        "status_badge",
        "node_instance",
        "endpoint",
        "network_name",
        "tunnel",
        "version",
        "cert_expiry",
        "last_error_short",
        "created_at",
    ]
    list_filter = ["status", "network"]
    list_select_related = ["node_instance", "network"]
    search_fields = ["id", "node_instance__name", "overlay_address", "server_cert_serial"]
    exclude = ["client_key_encrypted"]
    readonly_fields = [f.name for f in DockerHost._meta.fields if f.name != "client_key_encrypted"] + ["tunnel"]
    actions = ["decommission"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[DockerHost]:
        # the instance's peer on the host's /128, for the tunnel column without a query per row
        return (
            super()
            .get_queryset(request)
            .annotate(**tunnel_annotations(instance_field="node_instance_id", address_field="overlay_address"))
        )

    @admin.display(description="tunnel")
    def tunnel(self, obj: DockerHost) -> str:
        """The WireGuard tunnel of the instance's peer on the host's network, as the hub last reported it."""
        if not hasattr(obj, "peer_hub_reported_at"):  # a row not read through get_queryset
            return tunnel_for(instance_id=obj.node_instance_id, overlay_address=obj.overlay_address)["tunnel"]
        return tunnel_state(last_handshake_at=obj.peer_last_handshake_at, hub_reported_at=obj.peer_hub_reported_at)

    @admin.display(description="certificate expires", ordering="server_cert_not_after")
    def cert_expiry(self, obj: DockerHost) -> str:
        """The daemon's certificate expiry, flagged within 7 days (renewal runs at two thirds of the life)."""
        return cert_expiry_html(obj.server_cert_not_after)

    @admin.display(description="last error")
    def last_error_short(self, obj: DockerHost) -> str:
        return (obj.last_error[:80] + "…") if len(obj.last_error) > 80 else obj.last_error

    # no add, change or delete (ChangedThroughActions): hosts are made by the handshake only, and
    # decommission (which revokes the certificates) replaces deletion
    # decommission (the action with its confirmation page) comes from DockerHostPagesMixin


@admin.register(RegistryCredential)
class RegistryCredentialAdmin(ChangedThroughActions, admin.ModelAdmin):
    """Registry logins (``docker_set_registry_credentials``): registry and username, never the password (not
    even encrypted: the field is left out of every page)."""

    list_display = ["registry", "username", "updated_at", "created_at"]
    search_fields = ["registry", "username"]
    exclude = ["password_encrypted"]
    readonly_fields = ["registry", "username", "created_at", "updated_at"]
