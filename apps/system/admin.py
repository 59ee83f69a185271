"""Admin for operator tokens and for users: deactivating a user revokes their operator tokens."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.http import HttpRequest

from apps.system.models import OperatorToken
from apps.system.services import operator_tokens_revoke_for_user
from powernode.actors import Actor


@admin.register(OperatorToken)
class OperatorTokenAdmin(admin.ModelAdmin):
    list_display = ["prefix", "user", "name", "created_at", "expires_at", "last_used_at", "revoked_at"]
    list_filter = ["revoked_at"]
    search_fields = ["prefix", "user__username", "name"]
    # a token is made by create_operator_token; the admin may rename or revoke it, never move it to a user
    readonly_fields = ["prefix", "token_hash", "user", "created_at", "expires_at", "last_used_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


User = get_user_model()


class OperatorUserAdmin(UserAdmin):
    """Django's user admin, plus: saving a user as inactive revokes every operator token they hold."""

    def save_model(self, request: HttpRequest, obj, form, change: bool) -> None:  # noqa: ANN001
        super().save_model(request, obj, form, change)
        if not obj.is_active:
            operator_tokens_revoke_for_user(user=obj, actor=Actor.for_user(request.user))


if admin.site.is_registered(User):
    admin.site.unregister(User)
admin.site.register(User, OperatorUserAdmin)
