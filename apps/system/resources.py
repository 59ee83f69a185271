"""Read-only resource endpoints: each viewset only declares queryset, serializer, filterset, permission."""

from __future__ import annotations

from django.db.models import Prefetch
from rest_framework import viewsets

from apps.events.models import Event
from apps.events.serializers import EventSerializer
from apps.modules.models import Module
from apps.modules.serializers import ModuleSerializer
from apps.nodes.models import NodeInstance, NodeTemplate
from apps.nodes.serializers import NodeInstanceSerializer, NodeTemplateSerializer
from apps.sdwan.models import SdwanNetwork, SdwanPeer
from apps.sdwan.serializers import SdwanNetworkSerializer, SdwanPeerSerializer
from apps.system import filtersets
from apps.system.permissions import HasSystemPermission


class ResourceViewSet(viewsets.ReadOnlyModelViewSet):
    permission_classes = [HasSystemPermission]
    required_permission: str = ""


class NodeTemplateViewSet(ResourceViewSet):
    queryset = NodeTemplate.objects.prefetch_related("assignments")
    serializer_class = NodeTemplateSerializer
    filterset_class = filtersets.NodeTemplateFilter
    required_permission = "system.instance_view"


class NodeInstanceViewSet(ResourceViewSet):
    queryset = NodeInstance.objects.prefetch_related(Prefetch("sdwan_peers")).distinct()
    serializer_class = NodeInstanceSerializer
    filterset_class = filtersets.NodeInstanceFilter
    required_permission = "system.instance_view"


class ModuleViewSet(ResourceViewSet):
    queryset = Module.objects.all()
    serializer_class = ModuleSerializer
    filterset_class = filtersets.ModuleFilter
    required_permission = "system.instance_view"


class SdwanNetworkViewSet(ResourceViewSet):
    queryset = SdwanNetwork.objects.all()
    serializer_class = SdwanNetworkSerializer
    filterset_class = filtersets.SdwanNetworkFilter
    required_permission = "system.sdwan_view"


class SdwanPeerViewSet(ResourceViewSet):
    queryset = SdwanPeer.objects.all()
    serializer_class = SdwanPeerSerializer
    filterset_class = filtersets.SdwanPeerFilter
    required_permission = "system.sdwan_view"


class EventViewSet(ResourceViewSet):
    queryset = Event.objects.order_by("-occurred_at", "-id")
    serializer_class = EventSerializer
    filterset_class = filtersets.EventFilter
    required_permission = "system.events_view"
