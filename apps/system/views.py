"""HTTP transport of the action registry: list the actions, describe one, run one.

``GET /api/v1/actions/<name>`` describes an action; in the browsable API the page also offers a form
pre-filled with an example input, so an operator logged into the admin (session + CSRF) can run it
there. Running always goes through ``run_action``: the per-action permission, size and schema checks
are the same for the form, a Bearer client and MCP.

The route serves :func:`action_endpoint`, an async view: a plain JSON POST with an operator Bearer token (what
API clients send) is checked and run in one trip to the event loop's worker threads, the same checks in the
same order as ``ActionView`` and the same answer bytes; everything else (GET, the browsable page, a session,
another content type) is ``ActionView`` itself. Under the ASGI server that saves the thread Django starts
for every request to a sync view, and DRF's request wrapping, on the path every API client takes
(docs/PERFORMANCE.md).
"""

from __future__ import annotations

import io
import json
from typing import Any

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse
from django.utils.html import format_html
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.system.authentication import operator_for_request
from apps.system.errors import api_exception_handler
from powernode import tokens
from powernode.actors import Actor
from powernode.db import db_call
from powernode.errors import ApplicationError, PayloadTooLarge, ValidationError
from powernode.handlers import sessionless
from powernode.parsers import JSONParser
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
        check_input_length(request.META)
        # read the raw body first: an empty body means {} (DRF would parse it as an empty dict anyway)
        payload = request.data if request.body.strip() else {}
        return Response(run_action(name=name, actor=Actor.for_user(request.user), payload=checked_payload(payload)))


def check_input_length(meta: dict[str, Any]) -> None:
    length = int(meta.get("CONTENT_LENGTH") or 0)
    if length > MAX_INPUT_BYTES:
        raise PayloadTooLarge(f"The body is {length} bytes; the limit is {MAX_INPUT_BYTES}.")


def checked_payload(payload: Any) -> Any:
    if payload is None:
        raise ValidationError("The body must be a JSON object (or empty); got null.")
    return payload


# -- the served endpoint ---------------------------------------------------------------------------------
_action_view = ActionView.as_view()
_JSON = JSONRenderer()
#: the headers DRF's ActionView answers with (finalize_response: its methods; negotiation: Vary)
_HEADERS = {"Allow": "GET, POST, HEAD, OPTIONS", "Vary": "Accept"}


def _bearer_json_post(request: HttpRequest) -> str | None:
    """The operator token of a request ActionView would answer in JSON through OperatorTokenAuthentication,
    or None: then ActionView itself answers (other methods, sessions, agent tokens, a malformed header,
    ``?format=``, an Accept asking for HTML or an indent, another Content-Type or none, no Content-Length)."""
    meta = request.META
    if request.method != "POST" or meta.get("QUERY_STRING"):
        return None
    scheme, _, value = meta.get("HTTP_AUTHORIZATION", "").partition(" ")
    token = value.strip()
    if scheme.lower() != "bearer" or not token or token.startswith(f"{tokens.AGENT}_"):
        return None
    accept = meta.get("HTTP_ACCEPT", "")
    if accept and ("html" in accept or "indent" in accept or not any(
        kind in accept for kind in ("*/*", "application/*", "application/json")
    )):  # fmt: skip
        return None
    if _declared_body(meta) and meta.get("CONTENT_TYPE", "").split(";", 1)[0].strip().lower() != "application/json":
        return None
    return token


def _declared_body(meta: dict[str, Any]) -> bool:
    """DRF reads a body only when Content-Length says there is one (else request.data is empty)."""
    return meta.get("CONTENT_LENGTH", "0") not in ("", "0")


def _render(data: Any, status: int, headers: Any = ()) -> HttpResponse:
    response = HttpResponse(_JSON.render(data), status=status, content_type="application/json")
    for name, value in {**_HEADERS, **dict(headers)}.items():
        response[name] = value
    return response


def _run_bearer_action(request: HttpRequest, name: str, token: str) -> HttpResponse:
    """ActionView's POST for a Bearer JSON client, step for step: authenticate (throttle, token), size,
    parse, run_action (permission, size, schema, handler); refusals in the same error shape."""
    try:
        user = operator_for_request(request, token)
        check_input_length(request.META)
        body = request.body
        payload = {}
        if body.strip() and _declared_body(request.META):
            context = {"encoding": request.encoding or "utf-8"}
            payload = JSONParser().parse(io.BytesIO(body), "application/json", context)
        data = run_action(name=name, actor=Actor.for_user(user), payload=checked_payload(payload))
    except Exception as exc:  # noqa: BLE001 - refusals become the error shape; anything else goes on up
        return _render(*_refusal(request, exc))
    return _render(data, 200)


def _refusal(request: HttpRequest, exc: Exception) -> tuple[Any, int, Any]:
    response = api_exception_handler(exc, {"request": request})
    if response is None:
        raise exc
    # its own headers (WWW-Authenticate, Retry-After); not the placeholder Content-Type of an unrendered Response
    return response.data, response.status_code, [(k, v) for k, v in response.items() if k.lower() != "content-type"]


@sessionless(when=lambda request: _bearer_json_post(request) is not None)  # the requests answered here
@csrf_exempt
async def action_endpoint(request: HttpRequest, name: str) -> HttpResponse:
    """``/api/v1/actions/<name>``: a Bearer JSON POST runs here, the rest in ActionView (module docstring)."""
    token = _bearer_json_post(request)
    if token is None:
        return await sync_to_async(_action_view)(request, name=name)
    return await db_call(_run_bearer_action)(request, name, token)


action_endpoint.cls = ActionView  # drf-spectacular documents a route by its callback's APIView class
action_endpoint.initkwargs = {}
