"""HTTP transport of the action registry: list the actions, describe one, run one.

``GET /api/v1/actions/<name>`` describes an action; in the browsable API the page also offers a form
pre-filled with an example input, so an operator logged into the admin (session + CSRF) can run it
there. Running always goes through ``run_action``: the per-action permission, size and schema checks
are the same for the form, a Bearer client and MCP.
"""

from __future__ import annotations

import json
from typing import Any

from django.utils.html import format_html
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from powernode.actors import Actor
from powernode.errors import ApplicationError, PayloadTooLarge, ValidationError
from powernode.registry import MAX_INPUT_BYTES, Action, all_actions, get_action, run_action

ActionDescriptionSerializer = inline_serializer(
    "ActionDescription",
    {
        "name": serializers.CharField(),
        "description": serializers.CharField(),
        "permission": serializers.CharField(),
        "input_schema": serializers.DictField(),
        "example": serializers.DictField(help_text="an input that fits input_schema (ids are placeholders)"),
    },
)

ActionListSerializer = inline_serializer(
    "ActionList", {"actions": serializers.ListField(child=ActionDescriptionSerializer)}
)


class ActionListView(APIView):
    permission_classes = [IsAuthenticated]  # each action checks its own system.* permission when run

    @extend_schema(responses=ActionListSerializer, operation_id="actions_list", tags=["actions"])
    def get(self, request: Request) -> Response:
        """Every operator action with its description, permission and input JSON Schema."""
        return Response({"actions": [a.describe() for a in all_actions()]})


class ActionFormRenderer(BrowsableAPIRenderer):
    """The browsable API page of one action: its raw-data form holds the action's example input.

    The form is offered only to operators holding the action's permission; the POST it sends is the
    same JSON a Bearer client sends.
    """

    def show_form_for_method(self, view: Any, method: str, request: Request, obj: Any) -> bool:
        shown = super().show_form_for_method(view, method, request, obj)
        action_ = getattr(view, "action_", None)
        if shown and method == "POST" and action_ is not None:
            return bool(request.user.has_perm(action_.permission))
        return shown

    def get_raw_data_form(self, data: Any, view: Any, method: str, request: Request) -> Any:
        form = super().get_raw_data_form(data, view, method, request)
        action_ = getattr(view, "action_", None)
        if form is not None and method == "POST" and action_ is not None:
            form.fields["_content"].initial = json.dumps(action_.example_input(), indent=4)
        return form

    def get_description(self, view: Any, status_code: int) -> str:
        action_ = getattr(view, "action_", None)
        if action_ is None or status_code >= 400:
            return super().get_description(view, status_code)
        return format_html("<p>{}</p><p>Permission: <code>{}</code></p>", action_.description, action_.permission)

    def get_name(self, view: Any) -> str:
        action_ = getattr(view, "action_", None)
        return action_.name if action_ is not None else super().get_name(view)


class ActionView(APIView):
    """One action: GET describes it, POST runs it."""

    permission_classes = [IsAuthenticated]  # the action's own system.* permission is checked by run_action
    renderer_classes = [JSONRenderer, ActionFormRenderer]
    action_: Action | None = None

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # authentication first: an anonymous caller gets a 401
        try:
            self.action_ = get_action(kwargs["name"])  # for the browsable page (its title and form)
        except ApplicationError:
            self.action_ = None  # GET and run_action answer the 404 themselves

    @extend_schema(responses=ActionDescriptionSerializer, operation_id="actions_describe", tags=["actions"])
    def get(self, request: Request, name: str) -> Response:
        """One action's description, permission, input JSON Schema and an example input."""
        return Response(get_action(name).describe())

    @extend_schema(
        request=OpenApiTypes.OBJECT,
        responses={200: OpenApiTypes.OBJECT},
        operation_id="actions_run",
        tags=["actions"],
    )
    def post(self, request: Request, name: str) -> Response:
        """Run one action with a JSON object body (empty body = {}). See GET /api/v1/actions/ for inputs."""
        length = int(request.META.get("CONTENT_LENGTH") or 0)
        if length > MAX_INPUT_BYTES:
            raise PayloadTooLarge(f"The body is {length} bytes; the limit is {MAX_INPUT_BYTES}.")
        # read the raw body first: an empty body means {} (DRF would parse it as an empty dict anyway)
        payload = request.data if request.body.strip() else {}
        if payload is None:
            raise ValidationError("The body must be a JSON object (or empty); got null.")
        return Response(run_action(name=name, actor=Actor.for_user(request.user), payload=payload))
