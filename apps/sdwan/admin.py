"""Admin for SDWAN networks, peers and device access grants: read-only, every change is an action.

A network's prefix, a peer's /128 or WireGuard key and a grant's state change only through the
``system_sdwan_*`` actions (overlap checks, events); the admin's one button here, revoking grants,
runs ``system_sdwan_revoke_access_grant`` as the logged-in operator.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.sdwan.models import AccessGrant, SdwanNetwork, SdwanPeer
from powernode.admin_kit import ChangedThroughActions, error_text, run_as_operator
from powernode.errors import ApplicationError

MANAGE = "system.sdwan_manage"


@admin.register(SdwanNetwork)
class SdwanNetworkAdmin(ChangedThroughActions, admin.ModelAdmin):
    list_display = ["name", "prefix", "hub_endpoint", "created_at"]
    search_fields = ["name", "prefix"]
    exclude = ["hub_private_key_encrypted"]
    readonly_fields = ["name", "prefix", "hub_endpoint", "hub_public_key", "next_host_index", "created_at"]


@admin.register(SdwanPeer)
class SdwanPeerAdmin(ChangedThroughActions, admin.ModelAdmin):
    list_display = ["overlay_address", "network", "kind", "node_instance", "device_name", "created_at"]
    list_filter = ["kind", "network"]
    search_fields = ["overlay_address", "device_name", "node_instance__name", "public_key"]


@admin.register(AccessGrant)
class AccessGrantAdmin(ChangedThroughActions, admin.ModelAdmin):
    list_display = ["device_name_hint", "network", "peer", "created_by", "created_at", "revoked_at"]
    list_filter = ["network"]
    list_select_related = ["network", "peer", "created_by"]
    search_fields = ["device_name_hint"]
    actions = ["revoke_selected"]

    def has_sdwan_manage_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(MANAGE)

    @admin.action(description="Revoke the selected access grants (the hub drops them)", permissions=["sdwan_manage"])
    def revoke_selected(self, request: HttpRequest, queryset: QuerySet[AccessGrant]) -> None:
        done = 0
        for grant in queryset.filter(revoked_at__isnull=True):
            try:
                run_as_operator(request, "system_sdwan_revoke_access_grant", {"grant_id": str(grant.pk)})
                done += 1
            except ApplicationError as exc:
                self.message_user(request, f"{grant}: {error_text(exc)}", messages.ERROR)
        self.message_user(request, f"{done} access grant(s) revoked.")
