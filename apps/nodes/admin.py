"""Admin for node templates (with the module assignment panel) and instances (peers, runtimes, heartbeat).

Both are read-only: templates and instances are made, changed and deleted by actions only."""

from django.contrib import admin

from apps.modules.admin_pages import NodeTemplateModulesMixin
from apps.nodes.admin_pages import NodeInstanceOverviewMixin
from apps.nodes.models import NodeInstance, NodeTemplate
from powernode.admin_kit import ChangedThroughActions


@admin.register(NodeTemplate)
class NodeTemplateAdmin(ChangedThroughActions, NodeTemplateModulesMixin, admin.ModelAdmin):
    list_display = ["name", "description", "created_at"]
    search_fields = ["name", "description"]


@admin.register(NodeInstance)
class NodeInstanceAdmin(ChangedThroughActions, NodeInstanceOverviewMixin, admin.ModelAdmin):
    list_display = [
        "name", "node_template", "status", "agent_version", "last_heartbeat_at", "heartbeat_age", "created_at"
    ]
    list_select_related = ["node_template"]
    list_filter = ["status", "node_template"]
    search_fields = ["name", "id"]
    readonly_fields = ["agent_token_prefix", "agent_token_hash", "wireguard_public_key", "runtime_report"]
