"""REST resource of the event log: filterset and read-only viewset (``/api/v1/events/``), newest first, cursor-paged."""

from __future__ import annotations

import django_filters as filters
from rest_framework import viewsets

from apps.events.models import Event
from apps.events.serializers import EventSerializer
from powernode.pagination import NewestFirstCursorPagination
from powernode.permissions import EventsView


class EventFilter(filters.FilterSet):
    kind_prefix = filters.CharFilter(field_name="kind", lookup_expr="startswith")
    instance_id = filters.UUIDFilter(field_name="instance_id")
    since = filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="gte")

    class Meta:
        model = Event
        fields = ["kind", "kind_prefix", "instance_id", "host_id", "since"]


class EventViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Event.objects.order_by("-occurred_at", "-id")
    serializer_class = EventSerializer
    filterset_class = EventFilter
    permission_classes = [EventsView]
    pagination_class = NewestFirstCursorPagination  # a million rows: no COUNT, no OFFSET
