from django.contrib import admin

from apps.events.models import Event


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ["occurred_at", "kind", "actor", "instance_id", "host_id"]
    list_filter = ["kind"]
    search_fields = ["kind", "host_id"]
    show_full_result_count = False  # no COUNT(*) over millions of rows on every page
    readonly_fields = ["kind", "occurred_at", "actor", "actor_user", "instance_id", "host_id", "data"]

    def has_add_permission(self, request) -> bool:  # noqa: ANN001
        return False

    def has_change_permission(self, request, obj=None) -> bool:  # noqa: ANN001
        return False
