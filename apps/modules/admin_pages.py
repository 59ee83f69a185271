"""The "Modules" panel on a node template's admin page: assign and unassign runtime modules.

A mixin ``NodeTemplateAdmin`` inherits. Both buttons run the registry actions as the logged-in
operator (``run_as_operator``): the admin has no rule of its own, a crafted POST without
``system.docker_provision`` is a 403 and changes nothing.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path, reverse
from django.views.decorators.http import require_POST

from apps.modules.models import Module
from apps.nodes.models import NodeInstance, NodeTemplate
from apps.nodes.selectors import heartbeat_of
from powernode.admin_kit import error_text, is_uuid, run_as_operator
from powernode.errors import ApplicationError

PROVISION = "system.docker_provision"


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
        live = template.instances.exclude(status=NodeInstance.Status.DELETED)
        instances = list(live.prefetch_related("sdwan_peers__network").order_by("name")[:50])
        return {
            "pn_assignments": assignments,
            "pn_assignable": [
                m for m in Module.objects.order_by("name", "version") if m.id not in assigned_ids
            ],
            "pn_can_provision": request.user.has_perm(PROVISION),
            "pn_instances": [(i, heartbeat_of(i)) for i in instances],
            "pn_instances_total": live.count(),
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
        module = Module.objects.filter(pk=module_id).first() if is_uuid(module_id) else None
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
            run_as_operator(request, "system_assign_module_to_template", payload)
        except ApplicationError as exc:
            self.message_user(request, error_text(exc), messages.ERROR)
        else:
            self.message_user(
                request, f"Assigned {self._module_name(module_id)} to {template.name}.", messages.SUCCESS
            )
        return self._back(template)

    def _unassign(self, request: HttpRequest, object_id: str) -> HttpResponse:
        template = self._template_or_404(request, object_id)
        module_id = request.POST.get("module_id", "")
        try:
            run_as_operator(
                request,
                "system_unassign_module_from_template",
                {"template_id": str(template.pk), "module_id": module_id},
            )
        except ApplicationError as exc:
            self.message_user(request, error_text(exc), messages.ERROR)
        else:
            self.message_user(
                request,
                f"Unassigned {self._module_name(module_id)} from {template.name}. Running Docker hosts stay "
                "until you decommission them.",
                messages.SUCCESS,
            )
        return self._back(template)
