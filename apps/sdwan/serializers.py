"""Output shapes for SDWAN networks, peers and grants."""

from __future__ import annotations

from rest_framework import serializers

from apps.sdwan.models import AccessGrant, SdwanNetwork, SdwanPeer


class SdwanNetworkSerializer(serializers.ModelSerializer):
    hub_overlay_address = serializers.SerializerMethodField()

    class Meta:
        model = SdwanNetwork
        fields = ["id", "name", "prefix", "hub_endpoint", "hub_public_key", "hub_overlay_address", "created_at"]

    def get_hub_overlay_address(self, obj: SdwanNetwork) -> str:
        from apps.sdwan.addressing import address_at
        from apps.sdwan.services import HUB_INDEX

        return address_at(obj.prefix, HUB_INDEX)


class SdwanPeerSerializer(serializers.ModelSerializer):
    network_id = serializers.UUIDField(read_only=True)
    node_instance_id = serializers.UUIDField(read_only=True, allow_null=True)

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
        ]


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

    class Meta(AccessGrantSerializer.Meta):
        fields = [
            "id",
            "network_id",
            "peer_id",
            "overlay_address",
            "device_name_hint",
            "public_key",
            "created_at",
            "revoked_at",
        ]
