"""Admin for SDWAN networks, peers and device access grants: read-only, every change is an action.

A network's prefix, a peer's /128 or WireGuard key and a grant's state change only through the
``system_sdwan_*`` actions (overlap checks, events); the admin's buttons here, revoking grants and hub
tokens, run ``system_sdwan_revoke_access_grant`` / ``system_sdwan_revoke_hub_token`` as the logged-in
operator. Hub tokens are made by ``system_sdwan_create_hub_token`` only (the secret is shown once).
"""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.sdwan.models import AccessGrant, HubToken, SdwanNetwork, SdwanPeer
from apps.sdwan.selectors import peer_tunnel
from powernode.admin_kit import ChangedThroughActions, run_for_each

MANAGE = "system.sdwan_manage"


@admin.register(SdwanNetwork)
class SdwanNetworkAdmin(ChangedThroughActions, admin.ModelAdmin):
    list_display = ["name", "prefix", "hub_endpoint", "hub_listen_port", "hub_key", "created_at"]
    search_fields = ["name", "prefix"]
    readonly_fields = [
        "name",
        "prefix",
        "hub_endpoint",
        "hub_listen_port",
        "hub_public_key",
        "next_host_index",
        "created_at",
    ]

    @admin.display(description="hub key")
    def hub_key(self, obj: SdwanNetwork) -> str:
        return obj.hub_public_key or "not reported yet (no hub has synced)"


@admin.register(SdwanPeer)
class SdwanPeerAdmin(ChangedThroughActions, admin.ModelAdmin):
    list_display = [
        "overlay_address",
        "network",
        "kind",
        "node_instance",
        "device_name",
        "tunnel",
        "last_handshake_at",
        "created_at",
    ]
    list_filter = ["kind", "network"]
    list_select_related = ["network", "node_instance"]
    search_fields = ["overlay_address", "device_name", "node_instance__name", "public_key"]

    @admin.display(description="tunnel")
    def tunnel(self, obj: SdwanPeer) -> str:
        """"up": a handshake with the hub within 180 s; "unknown": no hub reported this peer yet."""
        return peer_tunnel(obj)


@admin.register(AccessGrant)
class AccessGrantAdmin(ChangedThroughActions, admin.ModelAdmin):
    list_display = ["device_name_hint", "network", "peer", "hub_key", "created_by", "created_at", "revoked_at"]
    list_filter = ["network"]
    list_select_related = ["network", "peer", "created_by"]
    search_fields = ["device_name_hint"]
    actions = ["revoke_selected"]

    def has_sdwan_manage_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(MANAGE)

    @admin.display(description="hub key")
    def hub_key(self, obj: AccessGrant) -> str:
        if obj.hub_key_current:
            return "current"
        return "config names an old hub key: create a new grant"

    @admin.action(description="Revoke the selected access grants (the hub drops them)", permissions=["sdwan_manage"])
    def revoke_selected(self, request: HttpRequest, queryset: QuerySet[AccessGrant]) -> None:
        run_for_each(
            self, request, queryset.filter(revoked_at__isnull=True),
            action="system_sdwan_revoke_access_grant", key="grant_id", noun="access grant(s) revoked",
        )  # fmt: skip


@admin.register(HubToken)
class HubTokenAdmin(ChangedThroughActions, admin.ModelAdmin):
    list_display = [
        "name",
        "prefix",
        "hub_version",
        "last_used_at",
        "applied_version_short",
        "applied_at",
        "created_by",
        "created_at",
        "revoked_at",
    ]
    list_select_related = ["created_by"]
    search_fields = ["name", "prefix"]
    exclude = ["token_hash"]
    readonly_fields = [f.name for f in HubToken._meta.fields if f.name != "token_hash"]
    actions = ["revoke_selected"]

    @admin.display(description="applied version")
    def applied_version_short(self, obj: HubToken) -> str:
        return obj.applied_version[:12]

    def has_sdwan_manage_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(MANAGE)

    @admin.action(description="Revoke the selected hub tokens (their hubs stop syncing)", permissions=["sdwan_manage"])
    def revoke_selected(self, request: HttpRequest, queryset: QuerySet[HubToken]) -> None:
        run_for_each(
            self, request, queryset.filter(revoked_at__isnull=True),
            action="system_sdwan_revoke_hub_token", key="token_id", noun="hub token(s) revoked",
        )  # fmt: skip
