"""REST resources of node templates and instances: filtersets and read-only viewsets (``/api/v1/``)."""

from __future__ import annotations

import django_filters as filters
from django.db.models import Prefetch
from rest_framework import viewsets

from apps.nodes.models import NodeInstance, NodeTemplate
from apps.nodes.serializers import NodeInstanceSerializer, NodeTemplateSerializer
from powernode.permissions import InstanceView


class NodeTemplateFilter(filters.FilterSet):
    name = filters.CharFilter(lookup_expr="icontains")

    class Meta:
        model = NodeTemplate
        fields = ["name"]


class NodeInstanceFilter(filters.FilterSet):
    name = filters.CharFilter(lookup_expr="icontains")
    node_template_id = filters.UUIDFilter(field_name="node_template_id")
    network_id = filters.UUIDFilter(field_name="sdwan_peers__network_id")

    class Meta:
        model = NodeInstance
        fields = ["name", "status", "node_template_id", "network_id"]


class NodeTemplateViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = NodeTemplate.objects.prefetch_related("assignments")
    serializer_class = NodeTemplateSerializer
    filterset_class = NodeTemplateFilter
    permission_classes = [InstanceView]


class NodeInstanceViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = NodeInstance.objects.prefetch_related(Prefetch("sdwan_peers")).distinct()
    serializer_class = NodeInstanceSerializer
    filterset_class = NodeInstanceFilter
    permission_classes = [InstanceView]
