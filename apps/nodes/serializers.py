"""Output shapes for templates and instances (API resources and action outputs alike)."""

from __future__ import annotations

from django.apps import apps as django_apps
from rest_framework import serializers

from apps.nodes.models import NodeInstance, NodeTemplate


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


class NodeInstanceSerializer(serializers.ModelSerializer):
    node_template_id = serializers.UUIDField(read_only=True)
    sdwan_peers = serializers.SerializerMethodField()
    docker_host_id = serializers.SerializerMethodField()
    heartbeat_age_s = serializers.SerializerMethodField()

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
            "wireguard_public_key",
            "sdwan_peers",
            "docker_host_id",
            "created_at",
        ]

    def get_sdwan_peers(self, obj: NodeInstance) -> list[dict]:
        return [
            {"id": str(p.id), "network_id": str(p.network_id), "overlay_address": p.overlay_address}
            for p in obj.sdwan_peers.all()
        ]

    def get_docker_host_id(self, obj: NodeInstance) -> str | None:
        if not django_apps.is_installed("apps.docker_hosts"):
            return None
        host = obj.docker_hosts.exclude(status="decommissioned").order_by("-created_at").first()
        return host.id if host else None

    def get_heartbeat_age_s(self, obj: NodeInstance) -> float | None:
        from django.utils import timezone

        if obj.last_heartbeat_at is None:
            return None
        return round((timezone.now() - obj.last_heartbeat_at).total_seconds(), 1)
