"""REST resource of the module catalog: filterset and read-only viewset (``/api/v1/modules/``)."""

from __future__ import annotations

import django_filters as filters
from rest_framework import viewsets

from apps.modules.models import Module
from apps.modules.serializers import ModuleSerializer
from powernode.permissions import InstanceView


class ModuleFilter(filters.FilterSet):
    class Meta:
        model = Module
        fields = ["name", "runtime", "lifecycle_state", "blessed"]


class ModuleViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Module.objects.all()
    serializer_class = ModuleSerializer
    filterset_class = ModuleFilter
    permission_classes = [InstanceView]
