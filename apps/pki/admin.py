"""Admin for issued certificates (read-only, with a revoke action) and the Vault KV outbox (with a retry action).

Revoking in the admin needs ``system.docker_provision``, the permission that decommissions Docker runtimes
(which revokes their certificates): the admin action is hidden without it, and refused (403) if posted
anyway. It revokes through the ``ca_revoke`` service, like every other revocation."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.pki.kv import vault_sync_pending
from apps.pki.models import IssuedCertificate, VaultKvOutbox
from apps.pki.services import ca_revoke
from powernode.actors import Actor
from powernode.admin_kit import ChangedThroughActions
from powernode.errors import ApplicationError

REVOKE = "system.docker_provision"


class RevokedFilter(admin.SimpleListFilter):
    title = "revoked"
    parameter_name = "revoked"

    def lookups(self, request, model_admin):  # noqa: ANN001, ANN201 - Django's signature
        return [("yes", "revoked"), ("no", "not revoked")]

    def queryset(self, request, queryset):  # noqa: ANN001, ANN201
        if self.value() == "yes":
            return queryset.filter(revoked_at__isnull=False)
        if self.value() == "no":
            return queryset.filter(revoked_at__isnull=True)
        return queryset


@admin.register(IssuedCertificate)
class IssuedCertificateAdmin(ChangedThroughActions, admin.ModelAdmin):
    list_display = [
        "serial",
        "kind",
        "common_name",
        "host_id",
        "operator",
        "not_after",
        "revoked_at",
        "adapter",
    ]
    list_filter = ["kind", "adapter", RevokedFilter]
    search_fields = ["serial", "common_name", "host_id", "operator__username"]
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in IssuedCertificate._meta.fields]
    actions = ["revoke_selected"]

    # no add, change or delete (ChangedThroughActions): certificates come from the CA services only, and
    # the record of what was issued is kept

    def has_docker_provision_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(REVOKE)

    @admin.action(description="Revoke selected certificates (CA and CRL)", permissions=["docker_provision"])
    def revoke_selected(self, request: HttpRequest, queryset: QuerySet[IssuedCertificate]) -> None:
        if not request.user.has_perm(REVOKE):  # Django hides the action; refuse a crafted call all the same
            raise PermissionDenied(f"Revoking certificates needs {REVOKE}.")
        actor = Actor.for_user(request.user)
        done = 0
        for cert in queryset.filter(revoked_at__isnull=True):
            try:
                ca_revoke(serial=cert.serial, reason="revoked in the admin", actor=actor)
                done += 1
            except ApplicationError as exc:
                self.message_user(request, f"{cert.serial}: {exc.message}", messages.ERROR)
        self.message_user(request, f"{done} certificate(s) revoked.")


@admin.register(VaultKvOutbox)
class VaultKvOutboxAdmin(admin.ModelAdmin):
    list_display = ["path", "status", "attempts", "last_error", "created_at", "last_attempt_at", "done_at"]
    list_filter = ["status"]
    search_fields = ["path", "last_error"]
    exclude = ["payload_encrypted"]
    readonly_fields = ["path", "status", "attempts", "last_error", "created_at", "last_attempt_at", "done_at"]
    actions = ["retry_pending"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Retry all pending writes now (vault_sync)")
    def retry_pending(self, request: HttpRequest, queryset: QuerySet[VaultKvOutbox]) -> None:
        report = vault_sync_pending()
        level = messages.SUCCESS if not report.failed else messages.WARNING
        text = f"written {report.written}, still pending {report.pending}"
        self.message_user(request, text + (f": {report.last_error}" if report.last_error else ""), level)
