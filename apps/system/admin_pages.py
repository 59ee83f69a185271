"""The operator pages added to the admin: module assignment on templates, the live host page, decommission.

Each is a mixin the app's ModelAdmin inherits. Every change goes through ``run_action`` — the same
permission check, input validation and service function as the HTTP API and MCP — so the admin has
no rule of its own; a crafted POST without the permission is a 403 and changes nothing.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from apps.docker_hosts.models import DockerHost
from apps.events.models import Event
from apps.modules.models import Module
from apps.nodes.models import NodeInstance, NodeTemplate
from apps.pki.models import IssuedCertificate
from apps.system import dashboard
from powernode.actors import Actor
from powernode.errors import ApplicationError, PermissionDenied
from powernode.registry import run_action

PROVISION = "system.docker_provision"


def _run(request: HttpRequest, name: str, payload: dict[str, Any]) -> dict[str, Any]:
    """run_action as the logged-in operator; a missing permission becomes Django's 403."""
    try:
        return run_action(name=name, actor=Actor.for_user(request.user), payload=payload)
    except PermissionDenied as exc:
        raise DjangoPermissionDenied(exc.message)


def _error_text(exc: ApplicationError) -> str:
    return f"{exc.type_name}: {exc.message}"


# -- node templates: assign / unassign modules --------------------------------------------------------


class NodeTemplateModulesMixin:
    """A "Modules" panel on the template page with assign/unassign buttons for operators who may."""

    change_form_template = "admin/nodes/nodetemplate/change_form.html"

    def get_urls(self) -> list:
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path(
                "<path:object_id>/modules/assign/",
                self.admin_site.admin_view(self.assign_module_view),
                name=f"{prefix}_assign_module",
            ),
            path(
                "<path:object_id>/modules/unassign/",
                self.admin_site.admin_view(self.unassign_module_view),
                name=f"{prefix}_unassign_module",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None):  # noqa: ANN001, ANN201
        template = self.get_object(request, object_id)
        if template is not None:
            extra_context = {**(extra_context or {}), **self._modules_context(request, template)}
        return super().change_view(request, object_id, form_url, extra_context)

    def _modules_context(self, request: HttpRequest, template: NodeTemplate) -> dict[str, Any]:
        assignments = list(
            template.assignments.select_related("module", "assigned_by").order_by("module__name")
        )
        assigned_ids = {a.module_id for a in assignments}
        instances = list(
            template.instances.exclude(status=NodeInstance.Status.DELETED)
            .prefetch_related("sdwan_peers__network")
            .order_by("name")[:50]
        )
        return {
            "pn_assignments": assignments,
            "pn_assignable": [
                m for m in Module.objects.order_by("name", "version") if m.id not in assigned_ids
            ],
            "pn_can_provision": request.user.has_perm(PROVISION),
            "pn_instances": [(i, dashboard.heartbeat_of(i)) for i in instances],
            "pn_instances_total": template.instances.exclude(status=NodeInstance.Status.DELETED).count(),
        }

    def _template_or_404(self, request: HttpRequest, object_id: str) -> NodeTemplate:
        template = self.get_object(request, object_id)
        if template is None or not self.has_view_permission(request, template):
            raise Http404("No such node template.")
        return template

    def _back(self, template: NodeTemplate) -> HttpResponseRedirect:
        url = reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=[template.pk])
        return HttpResponseRedirect(url + "#pn-modules")

    @staticmethod
    def _module_name(module_id: str) -> str:
        module = Module.objects.filter(pk=module_id).first() if _is_uuid(module_id) else None
        return str(module) if module else module_id

    def assign_module_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return require_POST(self._assign)(request, object_id)

    def unassign_module_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return require_POST(self._unassign)(request, object_id)

    def _assign(self, request: HttpRequest, object_id: str) -> HttpResponse:
        template = self._template_or_404(request, object_id)
        module_id = request.POST.get("module_id", "")
        payload: dict[str, Any] = {"template_id": str(template.pk), "module_id": module_id}
        if request.POST.get("override"):
            payload["override"] = True
        try:
            _run(request, "system_assign_module_to_template", payload)
        except ApplicationError as exc:
            self.message_user(request, _error_text(exc), messages.ERROR)
        else:
            self.message_user(
                request, f"Assigned {self._module_name(module_id)} to {template.name}.", messages.SUCCESS
            )
        return self._back(template)

    def _unassign(self, request: HttpRequest, object_id: str) -> HttpResponse:
        template = self._template_or_404(request, object_id)
        module_id = request.POST.get("module_id", "")
        try:
            _run(
                request,
                "system_unassign_module_from_template",
                {"template_id": str(template.pk), "module_id": module_id},
            )
        except ApplicationError as exc:
            self.message_user(request, _error_text(exc), messages.ERROR)
        else:
            self.message_user(
                request,
                f"Unassigned {self._module_name(module_id)} from {template.name}. Running Docker hosts stay "
                "until you decommission them.",
                messages.SUCCESS,
            )
        return self._back(template)


def _is_uuid(text: str) -> bool:
    import uuid

    try:
        uuid.UUID(str(text))
    except ValueError:
        return False
    return True


# -- node instances: peers, assignments, docker host, heartbeat ----------------------------------------


class NodeInstanceOverviewMixin:
    change_form_template = "admin/nodes/nodeinstance/change_form.html"

    @admin.display(description="last heartbeat", ordering="last_heartbeat_at")
    def heartbeat_age(self, obj: NodeInstance) -> str:
        beat = dashboard.heartbeat_of(obj)
        return format_html('<span class="pn-age pn-age-{}">{}</span>', beat.state, beat.label)

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None):  # noqa: ANN001, ANN201
        instance = self.get_object(request, object_id)
        if instance is not None:
            hosts = list(DockerHost.objects.filter(node_instance=instance).order_by("-created_at")[:5])
            extra_context = {
                **(extra_context or {}),
                "pn_heartbeat": dashboard.heartbeat_of(instance),
                "pn_interval": dashboard.stale_after().total_seconds() / 1.5,
                "pn_peers": list(instance.sdwan_peers.select_related("network").order_by("created_at")),
                "pn_assignments": list(
                    instance.node_template.assignments.select_related("module").order_by("module__name")
                ),
                "pn_hosts": hosts,
                "pn_pre_host_hint": dashboard.pre_host_hint(instance),
                "pn_events": Event.objects.filter(instance_id=instance.id).order_by("-occurred_at", "-id")[
                    :10
                ]
                if request.user.has_perm("system.events_view")
                else None,
            }
        return super().change_view(request, object_id, form_url, extra_context)


# -- docker hosts: list columns, the live host page, decommission with confirmation ---------------------


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
        return JsonResponse(dashboard.host_state(host), headers={"Cache-Control": "no-store"})

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None):  # noqa: ANN001, ANN201
        host = self.get_object(request, object_id)
        if host is not None:
            extra_context = {**(extra_context or {}), **self._host_context(request, host)}
        return super().change_view(request, object_id, form_url, extra_context)

    def _host_context(self, request: HttpRequest, host: DockerHost) -> dict[str, Any]:
        containers, daemon_error = None, ""
        if host.status == DockerHost.Status.CONNECTED:
            try:
                containers = _run(request, "docker_list_containers", {"host_id": host.id, "all": True})[
                    "containers"
                ]
            except DjangoPermissionDenied:
                daemon_error = "You lack system.docker_view: the containers are not shown."
            except ApplicationError as exc:
                # the daemon may be unreachable while its row says connected: say so, never a 500
                daemon_error = _error_text(exc)
                self.message_user(
                    request,
                    f"Could not read the containers from the daemon ({exc.type_name}): see Containers below.",
                    messages.WARNING,
                )
        return {
            "title": f"Docker host on {host.node_instance.name}",
            "pn_host": host,
            "pn_timeline": dashboard.host_timeline(host),
            "pn_hint": dashboard.troubleshooting_hint(host),
            "pn_state": dashboard.host_state(host),
            "pn_poll_ms": dashboard.poll_interval_ms(),
            "pn_heartbeat": dashboard.heartbeat_of(host.node_instance),
            "pn_containers": containers,
            "pn_daemon_error": daemon_error,
            "pn_can_decommission": request.user.has_perm(PROVISION)
            and host.status != DockerHost.Status.DECOMMISSIONED,
        }

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
                _run(request, "system_decommission_docker_runtime", {"host_id": host.id})
            except ApplicationError as exc:
                self.message_user(request, f"{host.id}: {_error_text(exc)}", messages.ERROR)
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
                    "heartbeat": dashboard.heartbeat_of(host.node_instance),
                }
            )
        context = {
            **self.admin_site.each_context(request),
            "title": "Decommission Docker runtime" + ("s" if len(hosts) > 1 else ""),
            "opts": self.opts,
            "rows": rows,
            "from_action": from_action,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            "interval_s": int(dashboard.stale_after().total_seconds() / 1.5),
        }
        return TemplateResponse(
            request, "admin/docker_hosts/dockerhost/decommission_confirmation.html", context
        )


# -- events: prefix/instance/host filters, no COUNT(*) over the whole table -----------------------------


class BoundedCountPaginator(Paginator):
    """Counts at most ``CAP`` + 1 rows (an indexed LIMIT scan), never the whole table.

    The admin needs a count for its page links; past the cap the page links stop and the count reads
    "more than CAP". Filters narrow the scan further.
    """

    CAP = 10_000

    @cached_property
    def count(self) -> int:
        return self.object_list.order_by()[: self.CAP + 1].count()


class TextInputFilter(admin.SimpleListFilter):
    """A list filter rendered as a text box (values come from the operator, not a DISTINCT scan)."""

    template = "admin/powernode/input_filter.html"
    placeholder = ""

    def lookups(self, request, model_admin):  # noqa: ANN001, ANN201 - Django's signature
        return []

    def has_output(self) -> bool:
        return True

    def choices(self, changelist):  # noqa: ANN001, ANN201
        # the form keeps every other query parameter (filters, search, ordering) as hidden inputs
        yield {
            "value": self.value() or "",
            "placeholder": self.placeholder,
            "parameter": self.parameter_name,
            "others": [(k, v) for k, v in changelist.params.items() if k != self.parameter_name],
            "clear_url": changelist.get_query_string(remove=[self.parameter_name]),
            "quick": [
                (prefix, changelist.get_query_string({self.parameter_name: prefix}))
                for prefix in getattr(self, "quick", [])
            ],
        }


class KindPrefixFilter(TextInputFilter):
    title = "kind starts with"
    parameter_name = "kind_prefix"
    placeholder = "system.docker.handshake"
    quick = [
        "system.docker.handshake",
        "system.docker.handshake.failed",
        "system.docker.decommission",
        "system.docker.module",
        "system.sdwan",
    ]

    def queryset(self, request, queryset):  # noqa: ANN001, ANN201
        value = (self.value() or "").strip()
        return queryset.filter(kind__startswith=value) if value else queryset


class InstanceFilter(TextInputFilter):
    title = "instance (name or id)"
    parameter_name = "instance"
    placeholder = "node-1"

    def queryset(self, request, queryset):  # noqa: ANN001, ANN201
        value = (self.value() or "").strip()
        if not value:
            return queryset
        if _is_uuid(value):
            return queryset.filter(instance_id=value)
        instance_id = NodeInstance.objects.filter(name=value).values_list("id", flat=True).first()
        return queryset.filter(instance_id=instance_id) if instance_id else queryset.none()


class HostFilter(TextInputFilter):
    title = "Docker host id"
    parameter_name = "host"
    placeholder = "host-…"

    def queryset(self, request, queryset):  # noqa: ANN001, ANN201
        value = (self.value() or "").strip()
        return queryset.filter(host_id=value) if value else queryset


class EventListMixin:
    paginator = BoundedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # facet counts would scan the whole log
    list_per_page = 100
    count_cap = BoundedCountPaginator.CAP

    @admin.display(description="instance")
    def instance_name(self, obj: Event) -> str:
        names = getattr(obj, "_pn_names", None) or {}
        name = names.get(str(obj.instance_id), "") if obj.instance_id else ""
        return name or (str(obj.instance_id)[:8] if obj.instance_id else "")

    @admin.display(description="kind", ordering="kind")
    def kind_badge(self, obj: Event) -> str:
        from apps.system.templatetags.powernode_admin import kind_class

        return format_html('<span class="pn-kind pn-kind-{}">{}</span>', kind_class(obj.kind), obj.kind)

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type:
        base = super().get_changelist(request, **kwargs)

        class EventChangeList(base):
            def get_results(self, request: HttpRequest) -> None:
                super().get_results(request)
                # one query for the names of the instances on this page
                names = dashboard.instance_names_for(list(self.result_list))
                for event in self.result_list:
                    event._pn_names = names

        return EventChangeList

    def changelist_view(self, request: HttpRequest, extra_context=None):  # noqa: ANN001, ANN201
        return super().changelist_view(
            request,
            {
                **(extra_context or {}),
                "pn_count_cap": BoundedCountPaginator.CAP,
                "pn_quick_prefixes": KindPrefixFilter.quick,
            },
        )
