"""Output shapes for SDWAN networks, peers and grants."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.sdwan.models import AccessGrant, HubToken, SdwanNetwork, SdwanPeer


class SdwanNetworkSerializer(serializers.ModelSerializer):
    hub_overlay_address = serializers.SerializerMethodField()

    class Meta:
        model = SdwanNetwork
        fields = [
            "id",
            "name",
            "prefix",
            "hub_endpoint",
            "hub_public_key",
            "hub_listen_port",
            "hub_overlay_address",
            "created_at",
        ]

    def get_hub_overlay_address(self, obj: SdwanNetwork) -> str:
        from apps.sdwan.addressing import address_at
        from apps.sdwan.services import HUB_INDEX

        return address_at(obj.prefix, HUB_INDEX)


class SdwanPeerSerializer(serializers.ModelSerializer):
    network_id = serializers.UUIDField(read_only=True)
    node_instance_id = serializers.UUIDField(read_only=True, allow_null=True)
    tunnel = serializers.SerializerMethodField(
        help_text='"up": a handshake with the hub within 180 s; "down"; "unknown": no hub reported this peer'
    )

    class Meta:
        model = SdwanPeer
        fields = [
            "id",
            "network_id",
            "node_instance_id",
            "kind",
            "device_name",
            "overlay_address",
            "public_key",
            "pinned_public_key",
            "created_at",
            "last_handshake_at",
            "rx_bytes",
            "tx_bytes",
            "tunnel",
        ]

    @extend_schema_field({"type": "string", "enum": ["up", "down", "unknown"]})
    def get_tunnel(self, obj: SdwanPeer) -> str:
        from apps.sdwan.selectors import peer_tunnel

        return peer_tunnel(obj)


class AccessGrantSerializer(serializers.ModelSerializer):
    network_id = serializers.UUIDField(read_only=True)
    peer_id = serializers.UUIDField(read_only=True)
    overlay_address = serializers.CharField(source="peer.overlay_address", read_only=True)

    class Meta:
        model = AccessGrant
        fields = ["id", "network_id", "peer_id", "overlay_address", "device_name_hint", "created_at"]


class AccessGrantListSerializer(AccessGrantSerializer):
    """A grant as ``system_sdwan_list_access_grants`` and ``system_sdwan_revoke_access_grant`` show it."""

    public_key = serializers.CharField(source="peer.public_key", read_only=True)
    hub_key_current = serializers.BooleanField(
        read_only=True,
        help_text="false when the hub re-keyed since: the config names an old hub key, create a new grant",
    )

    class Meta(AccessGrantSerializer.Meta):
        fields = [
            "id",
            "network_id",
            "peer_id",
            "overlay_address",
            "device_name_hint",
            "public_key",
            "hub_public_key",
            "hub_key_current",
            "created_at",
            "revoked_at",
        ]


class HubTokenSerializer(serializers.ModelSerializer):
    """A hub token as operators see it: never the secret, never its hash."""

    created_by = serializers.SerializerMethodField()

    class Meta:
        model = HubToken
        fields = [
            "id",
            "name",
            "prefix",
            "created_by",
            "created_at",
            "last_used_at",
            "revoked_at",
            "hub_version",
            "applied_version",
            "applied_at",
        ]

    @extend_schema_field(OpenApiTypes.STR)
    def get_created_by(self, obj: HubToken) -> str | None:
        return obj.created_by.get_username() if obj.created_by_id else None
