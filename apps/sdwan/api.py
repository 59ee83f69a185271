"""REST resources of SDWAN networks and peers: filtersets and read-only viewsets (``/api/v1/sdwan/``)."""

from __future__ import annotations

import django_filters as filters
from rest_framework import viewsets

from apps.sdwan.models import SdwanNetwork, SdwanPeer
from apps.sdwan.serializers import SdwanNetworkSerializer, SdwanPeerSerializer
from powernode.permissions import SdwanView


class SdwanNetworkFilter(filters.FilterSet):
    name = filters.CharFilter(lookup_expr="icontains")

    class Meta:
        model = SdwanNetwork
        fields = ["name"]


class SdwanPeerFilter(filters.FilterSet):
    network_id = filters.UUIDFilter(field_name="network_id")
    node_instance_id = filters.UUIDFilter(field_name="node_instance_id")

    class Meta:
        model = SdwanPeer
        fields = ["network_id", "node_instance_id", "kind", "overlay_address"]


class SdwanNetworkViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = SdwanNetwork.objects.all()
    serializer_class = SdwanNetworkSerializer
    filterset_class = SdwanNetworkFilter
    permission_classes = [SdwanView]


class SdwanPeerViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = SdwanPeer.objects.all()
    serializer_class = SdwanPeerSerializer
    filterset_class = SdwanPeerFilter
    permission_classes = [SdwanView]
