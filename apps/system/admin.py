from django.contrib import admin

from apps.system.models import OperatorToken


@admin.register(OperatorToken)
class OperatorTokenAdmin(admin.ModelAdmin):
    list_display = ["prefix", "user", "name", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["revoked_at"]
    search_fields = ["prefix", "user__username", "name"]
    readonly_fields = ["prefix", "token_hash", "created_at", "last_used_at"]
