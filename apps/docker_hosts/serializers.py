"""Output shape of a Docker host (actions, admin views) and the documented handshake input."""

from __future__ import annotations

from rest_framework import serializers

from apps.docker_hosts.models import DockerHost
from apps.docker_hosts.phases import HANDSHAKE_PHASES
from apps.modules.models import Module


class DockerHostSerializer(serializers.ModelSerializer):
    node_instance_id = serializers.UUIDField(read_only=True)
    network_id = serializers.UUIDField(read_only=True)

    class Meta:
        model = DockerHost
        fields = [
            "id",
            "node_instance_id",
            "network_id",
            "overlay_address",
            "api_endpoint",
            "status",
            "version",
            "api_version",
            "last_error",
            "server_cert_serial",
            "created_at",
            "cert_signed_at",
            "connected_at",
            "failed_at",
            "decommission_requested_at",
            "decommissioned_at",
        ]


class HandshakeInputSerializer(serializers.Serializer):
    """For the API schema only: the phase machine validates bodies itself (apps.docker_hosts.handshake)."""

    runtime = serializers.ChoiceField(choices=[Module.Runtime.DOCKER.value])
    phase = serializers.ChoiceField(choices=list(HANDSHAKE_PHASES))
    csr_pem = serializers.CharField(required=False, help_text="wants_cert: the daemon's Ed25519 CSR")
    version = serializers.CharField(required=False, help_text="ready: the engine version")
    error = serializers.CharField(required=False, help_text="failed: what went wrong")
    host_id = serializers.CharField(required=False, help_text="decommissioned: the host that was removed")
