from django.contrib import admin

from apps.nodes.models import NodeInstance, NodeTemplate


@admin.register(NodeTemplate)
class NodeTemplateAdmin(admin.ModelAdmin):
    list_display = ["name", "description", "created_at"]
    search_fields = ["name", "description"]


@admin.register(NodeInstance)
class NodeInstanceAdmin(admin.ModelAdmin):
    list_display = ["name", "node_template", "status", "agent_version", "last_heartbeat_at", "created_at"]
    list_filter = ["status", "node_template"]
    search_fields = ["name", "id"]
    readonly_fields = ["agent_token_prefix", "agent_token_hash", "wireguard_public_key", "runtime_report"]
