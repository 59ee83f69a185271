from django.contrib import admin

from apps.modules.models import Module, ModuleAssignment


@admin.register(Module)
class ModuleAdmin(admin.ModelAdmin):
    list_display = ["name", "version", "runtime", "lifecycle_state", "blessed"]
    list_filter = ["runtime", "lifecycle_state", "blessed"]
    search_fields = ["name"]


@admin.register(ModuleAssignment)
class ModuleAssignmentAdmin(admin.ModelAdmin):
    list_display = ["module", "node_template", "override", "assigned_by", "created_at"]
    list_filter = ["module", "override"]
    search_fields = ["node_template__name", "module__name"]
    raw_id_fields = ["node_template", "module"]
