"""Output shapes for modules and assignments."""

from __future__ import annotations

from rest_framework import serializers

from apps.modules.models import Module, ModuleAssignment


class ModuleSerializer(serializers.ModelSerializer):
    class Meta:
        model = Module
        fields = ["id", "name", "version", "runtime", "lifecycle_state", "blessed", "description"]


class ModuleAssignmentSerializer(serializers.ModelSerializer):
    template_id = serializers.UUIDField(source="node_template_id", read_only=True)
    module_id = serializers.UUIDField(read_only=True)
    module_name = serializers.CharField(source="module.name", read_only=True)

    class Meta:
        model = ModuleAssignment
        fields = ["id", "template_id", "module_id", "module_name", "override", "created_at"]
