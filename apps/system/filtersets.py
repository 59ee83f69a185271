"""django-filter FilterSets for the read-only resource endpoints (one per model)."""

from __future__ import annotations

import django_filters as filters

from apps.events.models import Event
from apps.modules.models import Module
from apps.nodes.models import NodeInstance, NodeTemplate
from apps.sdwan.models import SdwanNetwork, SdwanPeer


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


class ModuleFilter(filters.FilterSet):
    class Meta:
        model = Module
        fields = ["name", "runtime", "lifecycle_state", "blessed"]


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


class EventFilter(filters.FilterSet):
    kind_prefix = filters.CharFilter(field_name="kind", lookup_expr="startswith")
    instance_id = filters.UUIDFilter(field_name="instance_id")
    since = filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="gte")

    class Meta:
        model = Event
        fields = ["kind", "kind_prefix", "instance_id", "host_id", "since"]
