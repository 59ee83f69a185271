"""Output shapes for templates and instances (API resources and action outputs alike)."""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.nodes.models import NodeInstance, NodeTemplate
from apps.nodes.selectors import heartbeat_of
from powernode import runtimes


class NodeTemplateSerializer(serializers.ModelSerializer):
    module_ids = serializers.SerializerMethodField()

    class Meta:
        model = NodeTemplate
        fields = ["id", "name", "description", "created_at", "module_ids"]

    def get_module_ids(self, obj: NodeTemplate) -> list[str]:
        return [str(a.module_id) for a in obj.assignments.all()]


class InstancePeerSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    network_id = serializers.UUIDField()
    overlay_address = serializers.CharField()


@extend_schema_field({"type": "string", "nullable": True, "readOnly": True})
class RuntimeField(serializers.Field):
    """A read-only field a runtime adds to instance output (``RuntimeProvider.instance_field_names``)."""

    def __init__(self, *, provider: runtimes.RuntimeProvider, **kwargs: Any) -> None:
        self.provider = provider
        super().__init__(read_only=True, source="*", allow_null=True, **kwargs)

    def to_representation(self, instance: NodeInstance) -> Any:
        return self.provider.instance_fields(instance).get(self.field_name)


class NodeInstanceSerializer(serializers.ModelSerializer):
    """An instance; each registered runtime adds its fields (the Docker runtime: ``docker_host_id``)."""

    node_template_id = serializers.UUIDField(read_only=True)
    sdwan_peers = serializers.SerializerMethodField()
    heartbeat_age_s = serializers.SerializerMethodField()
    stale = serializers.SerializerMethodField(help_text="no heartbeat for 1.5× the interval (or never)")

    class Meta:
        model = NodeInstance
        fields = [
            "id",
            "name",
            "node_template_id",
            "status",
            "agent_version",
            "last_heartbeat_at",
            "heartbeat_age_s",
            "stale",
            "wireguard_public_key",
            "sdwan_peers",
            "created_at",
        ]

    def get_sdwan_peers(self, obj: NodeInstance) -> list[dict]:
        return [
            {"id": str(p.id), "network_id": str(p.network_id), "overlay_address": p.overlay_address}
            for p in obj.sdwan_peers.all()
        ]

    def get_heartbeat_age_s(self, obj: NodeInstance) -> float | None:
        if obj.last_heartbeat_at is None:
            return None
        return round((timezone.now() - obj.last_heartbeat_at).total_seconds(), 1)

    def get_stale(self, obj: NodeInstance) -> bool:
        return heartbeat_of(obj).stale

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        for provider in runtimes.providers():  # declared fields, so the API schema lists them too
            for name in provider.instance_field_names:
                fields[name] = RuntimeField(provider=provider)
        return fields
