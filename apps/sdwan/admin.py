from django.contrib import admin

from apps.sdwan.models import AccessGrant, SdwanNetwork, SdwanPeer


@admin.register(SdwanNetwork)
class SdwanNetworkAdmin(admin.ModelAdmin):
    list_display = ["name", "prefix", "hub_endpoint", "created_at"]
    search_fields = ["name", "prefix"]
    exclude = ["hub_private_key_encrypted"]
    readonly_fields = ["hub_public_key", "next_host_index"]


@admin.register(SdwanPeer)
class SdwanPeerAdmin(admin.ModelAdmin):
    list_display = ["overlay_address", "network", "kind", "node_instance", "device_name", "created_at"]
    list_filter = ["kind", "network"]
    search_fields = ["overlay_address", "device_name", "node_instance__name", "public_key"]
    raw_id_fields = ["node_instance"]
    # keys change only through the heartbeat and system_sdwan_reset_peer_key (pinning, events)
    readonly_fields = ["public_key", "pinned_public_key"]


@admin.register(AccessGrant)
class AccessGrantAdmin(admin.ModelAdmin):
    list_display = ["device_name_hint", "network", "peer", "created_by", "created_at", "revoked_at"]
    list_filter = ["network"]
    search_fields = ["device_name_hint"]
