"""The Docker host pages of the admin: list columns, the live host page, decommission with confirmation.

A mixin ``DockerHostAdmin`` inherits. Every change goes through ``run_action`` (``run_as_operator``) —
the same permission check, input validation and service function as the HTTP API and MCP — so a
crafted POST without the permission is a 403 and changes nothing.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.timesince import timesince

from apps.docker_hosts import timeline
from apps.docker_hosts.models import DockerHost
from apps.nodes.selectors import heartbeat_interval_s, heartbeat_of
from apps.pki.models import IssuedCertificate
from powernode.admin_kit import error_text, run_as_operator
from powernode.errors import ApplicationError

LIFECYCLE_OPERATIONS = ("start", "stop", "restart")

PROVISION = "system.docker_provision"
#: certificates expiring sooner than this are flagged (renewal normally happens long before)
EXPIRY_WARNING = dt.timedelta(days=7)


def cert_expiry_html(not_after: dt.datetime | None, *, now: dt.datetime | None = None) -> str:
    """A certificate's expiry date, flagged (class ``pn-expiring``) when it is within 7 days or past."""
    if not_after is None:
        return "—"
    left = not_after - (now or timezone.now())
    when = not_after.strftime("%Y-%m-%d %H:%M")
    if left <= dt.timedelta(0):
        return format_html('<span class="pn-expiring" title="{}">expired {}</span>', not_after.isoformat(), when)
    if left < EXPIRY_WARNING:
        return format_html(
            '<span class="pn-expiring" title="{}">{} (in {})</span>',
            not_after.isoformat(),
            when,
            timesince(now or timezone.now(), not_after),
        )
    return format_html('<span title="{}">{}</span>', not_after.isoformat(), when)


class DockerHostPagesMixin:
    change_form_template = "admin/docker_hosts/dockerhost/change_form.html"

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: DockerHost) -> str:
        return format_html(
            '<span class="pn-badge pn-{}" title="{}">{}</span>',
            obj.status,
            obj.get_status_display(),
            obj.status,
        )

    @admin.display(description="host", ordering="id")
    def short_id(self, obj: DockerHost) -> str:
        # uuid7 ids share their leading (time) digits: the random tail tells hosts apart in a list
        return format_html('<span class="pn-mono" title="{}">host-…{}</span>', obj.id, obj.id[-12:])

    @admin.display(description="network", ordering="network__name")
    def network_name(self, obj: DockerHost) -> str:
        return format_html('<span title="{}">{}</span>', obj.network.prefix, obj.network.name)

    @admin.display(description="API endpoint", ordering="api_endpoint")
    def endpoint(self, obj: DockerHost) -> str:
        return format_html('<span class="pn-endpoint">{}</span>', obj.api_endpoint)

    def has_docker_provision_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(PROVISION)

    def get_urls(self) -> list:
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path(
                "<path:object_id>/state.json",
                self.admin_site.admin_view(self.host_state_view),
                name=f"{prefix}_state",
            ),
            path(
                "<path:object_id>/containers/<str:container_id>/logs/",
                self.admin_site.admin_view(self.container_logs_view),
                name=f"{prefix}_container_logs",
            ),
            path(
                "<path:object_id>/containers/<str:container_id>/<str:operation>/",
                self.admin_site.admin_view(self.container_lifecycle_view),
                name=f"{prefix}_container_lifecycle",
            ),
            path(
                "<path:object_id>/decommission/",
                self.admin_site.admin_view(self.decommission_view),
                name=f"{prefix}_decommission",
            ),
            *super().get_urls(),
        ]

    def get_fieldsets(self, request: HttpRequest, obj: DockerHost | None = None) -> list:
        # The panels above the form tell the story; the raw fields stay below, certificates folded away.
        sets = [
            (
                None,
                {
                    "fields": [
                        "id",
                        "node_instance",
                        "network",
                        "overlay_address",
                        "api_endpoint",
                        "status",
                        "version",
                        "api_version",
                        "last_error",
                    ]
                },
            ),
            (
                "Phase times",
                {
                    "classes": ["collapse"],
                    "fields": [
                        "cert_signed_at",
                        "config_sent_at",
                        "connected_at",
                        "failed_at",
                        "decommission_requested_at",
                        "decommissioned_at",
                        "created_at",
                        "updated_at",
                    ],
                },
            ),
            (
                "Certificates",
                {
                    "classes": ["collapse"],
                    "fields": [
                        "server_cert_serial",
                        "server_cert_not_after",
                        "client_cert_serial",
                        "client_cert_not_after",
                        "client_cert_pem",
                        "client_chain_pem",
                    ],
                },
            ),
        ]
        listed = {f for _, options in sets for f in options["fields"]}
        rest = [f for f in self.get_readonly_fields(request, obj) if f not in listed]
        return sets + ([("Other", {"classes": ["collapse"], "fields": rest})] if rest else [])

    def _host_or_404(self, request: HttpRequest, object_id: str) -> DockerHost:
        host = self.get_object(request, object_id)
        if host is None or not self.has_view_permission(request, host):
            raise Http404("No such Docker host.")
        return host

    def host_state_view(self, request: HttpRequest, object_id: str) -> JsonResponse:
        host = self._host_or_404(request, object_id)
        return JsonResponse(timeline.host_state(host), headers={"Cache-Control": "no-store"})

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None):  # noqa: ANN001, ANN201
        host = self.get_object(request, object_id)
        if host is not None:
            extra_context = {**(extra_context or {}), **self._host_context(request, host)}
        return super().change_view(request, object_id, form_url, extra_context)

    def _host_context(self, request: HttpRequest, host: DockerHost) -> dict[str, Any]:
        containers, daemon_error = None, ""
        if host.status == DockerHost.Status.CONNECTED:
            try:
                containers = run_as_operator(request, "docker_list_containers", {"host_id": host.id, "all": True})[
                    "containers"
                ]
            except DjangoPermissionDenied:
                daemon_error = "You lack system.docker_view: the containers are not shown."
            except ApplicationError as exc:
                # the daemon may be unreachable while its row says connected: say so, never a 500
                daemon_error = error_text(exc)
                self.message_user(
                    request,
                    f"Could not read the containers from the daemon ({exc.type_name}): see Containers below.",
                    messages.WARNING,
                )
        return {
            "title": f"Docker host on {host.node_instance.name}",
            "pn_host": host,
            "pn_timeline": timeline.host_timeline(host),
            "pn_hint": timeline.troubleshooting_hint(host),
            "pn_state": timeline.host_state(host),
            "pn_poll_ms": timeline.poll_interval_ms(),
            "pn_heartbeat": heartbeat_of(host.node_instance),
            "pn_containers": containers,
            "pn_daemon_error": daemon_error,
            "pn_can_operate": request.user.has_perm("system.docker_operate"),
            "pn_server_expiry": cert_expiry_html(host.server_cert_not_after),
            "pn_client_expiry": cert_expiry_html(host.client_cert_not_after),
            "pn_can_decommission": request.user.has_perm(PROVISION)
            and host.status != DockerHost.Status.DECOMMISSIONED,
        }

    # containers: start/stop/restart buttons and a logs page, each one registry action as the operator

    def container_lifecycle_view(
        self, request: HttpRequest, object_id: str, container_id: str, operation: str
    ) -> HttpResponse:
        host = self._host_or_404(request, object_id)
        if request.method != "POST" or operation not in LIFECYCLE_OPERATIONS:
            raise Http404("Start, stop and restart are POSTs.")
        try:
            answer = run_as_operator(
                request, f"docker_{operation}_container", {"host_id": host.id, "container_id": container_id}
            )
        except ApplicationError as exc:
            self.message_user(request, f"{operation} {container_id}: {error_text(exc)}", messages.ERROR)
        else:
            container = answer["container"]
            self.message_user(
                request, f"{operation}: {container['name']} is {container['status']}.", messages.SUCCESS
            )
        return HttpResponseRedirect(
            reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=[host.pk])
        )

    def container_logs_view(self, request: HttpRequest, object_id: str, container_id: str) -> HttpResponse:
        host = self._host_or_404(request, object_id)
        try:
            tail = min(max(int(request.GET.get("tail", 200)), 1), 5000)
        except ValueError:
            tail = 200
        logs, error = None, ""
        try:
            logs = run_as_operator(
                request, "docker_container_logs", {"host_id": host.id, "container_id": container_id, "tail": tail}
            )
        except ApplicationError as exc:
            error = error_text(exc)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Logs of {container_id} on {host.node_instance.name}",
            "opts": self.opts,
            "pn_host": host,
            "container_id": container_id,
            "tail": tail,
            "logs": logs,
            "error": error,
        }
        return TemplateResponse(request, "admin/docker_hosts/dockerhost/container_logs.html", context)

    # decommission: a button on the host page and an admin action, both via the confirmation page

    def decommission_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        host = self._host_or_404(request, object_id)
        if not request.user.has_perm(PROVISION):
            raise DjangoPermissionDenied(f"Decommissioning needs {PROVISION}.")
        if request.method == "POST":
            self._decommission_hosts(request, [host])
            return HttpResponseRedirect(
                reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=[host.pk])
            )
        return self._confirmation(request, [host], from_action=False)

    @admin.action(description="Decommission the selected Docker runtimes…", permissions=["docker_provision"])
    def decommission(self, request: HttpRequest, queryset: QuerySet[DockerHost]) -> HttpResponse | None:
        hosts = list(queryset.select_related("node_instance", "network"))
        if request.POST.get("post") == "yes":
            self._decommission_hosts(request, hosts)
            return None
        return self._confirmation(request, hosts, from_action=True)

    def _decommission_hosts(self, request: HttpRequest, hosts: list[DockerHost]) -> None:
        for host in hosts:
            try:
                run_as_operator(request, "system_decommission_docker_runtime", {"host_id": host.id})
            except ApplicationError as exc:
                self.message_user(request, f"{host.id}: {error_text(exc)}", messages.ERROR)
            else:
                self.message_user(
                    request,
                    f"Decommission requested for {host.node_instance.name} ({host.id}): the agent stops "
                    "dockerd on its next heartbeat.",
                    messages.SUCCESS,
                )

    def _confirmation(
        self, request: HttpRequest, hosts: list[DockerHost], *, from_action: bool
    ) -> HttpResponse:
        rows = []
        for host in hosts:
            certs = IssuedCertificate.objects.filter(host_id=host.id, revoked_at__isnull=True)
            rows.append(
                {
                    "host": host,
                    "certificates": certs.count(),
                    "already": host.status
                    in (DockerHost.Status.DECOMMISSIONING, DockerHost.Status.DECOMMISSIONED),
                    "heartbeat": heartbeat_of(host.node_instance),
                }
            )
        context = {
            **self.admin_site.each_context(request),
            "title": "Decommission Docker runtime" + ("s" if len(hosts) > 1 else ""),
            "opts": self.opts,
            "rows": rows,
            "from_action": from_action,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            "interval_s": heartbeat_interval_s(),
        }
        return TemplateResponse(
            request, "admin/docker_hosts/dockerhost/decommission_confirmation.html", context
        )
