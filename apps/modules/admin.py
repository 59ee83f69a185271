"""Admin for the module catalog and its assignments: read-only; the template page's Modules panel and
the ``system_*_module_*`` actions make every change."""

from django.contrib import admin

from apps.modules.models import Module, ModuleAssignment
from powernode.admin_kit import ChangedThroughActions


@admin.register(Module)
class ModuleAdmin(ChangedThroughActions, admin.ModelAdmin):
    list_display = ["name", "version", "runtime", "lifecycle_state", "blessed"]
    list_filter = ["runtime", "lifecycle_state", "blessed"]
    search_fields = ["name"]


@admin.register(ModuleAssignment)
class ModuleAssignmentAdmin(ChangedThroughActions, admin.ModelAdmin):
    list_display = ["module", "node_template", "override", "assigned_by", "created_at"]
    list_filter = ["module", "override"]
    search_fields = ["node_template__name", "module__name"]
