"""REST resource of Docker hosts: filterset and read-only viewset (``/api/v1/docker/hosts/``).

The same hosts and filters (status, network_id) as the ``docker_list_hosts`` action, newest first;
the output never carries the platform's client key.
"""

from __future__ import annotations

import django_filters as filters
from rest_framework import viewsets

from apps.docker_hosts.models import DockerHost
from apps.docker_hosts.serializers import DockerHostSerializer
from powernode.permissions import DockerView


class DockerHostFilter(filters.FilterSet):
    network_id = filters.UUIDFilter(field_name="network_id")
    node_instance_id = filters.UUIDFilter(field_name="node_instance_id")

    class Meta:
        model = DockerHost
        fields = ["status", "network_id", "node_instance_id"]


class DockerHostViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = DockerHost.objects.order_by("-created_at", "id")
    serializer_class = DockerHostSerializer
    filterset_class = DockerHostFilter
    permission_classes = [DockerView]
