"""HTTP endpoints agents call (Bearer ``pna_`` tokens): the base view and ``POST /api/v1/agent/heartbeat``.

The heartbeat is a Django async view (:func:`heartbeat`): a watch request (``desired_version`` + ``wait_s``)
is held without a thread or a database connection until the instance's desired state changes
(``powernode.watch``). Its checks are the DRF views' (same functions, same order, same error shapes);
``HeartbeatView`` documents it in the OpenAPI schema.
"""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions as drf
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.nodes.agent_auth import AgentPrincipal, AgentTokenAuthentication, IsAgent
from apps.nodes.heartbeat import agent_heartbeat, instance_desired_state, instance_watch_topics
from apps.nodes.models import NodeInstance
from apps.sdwan import wireguard
from powernode import metrics, watch
from powernode.async_views import application_error, check_content_length, error_response, method_not_allowed
from powernode.db import db_call
from powernode.errors import ApplicationError, ValidationError
from powernode.handlers import sessionless
from powernode.parsers import JSONParser
from powernode.runtimes import providers as runtime_providers
from powernode.text import bad_text_path

MAX_AGENT_BODY_BYTES = 64 * 1024
MAX_RUNTIME_REPORT_BYTES = 4 * 1024
#: the longest a heartbeat may be held (seconds): under the usual 60 s proxy and client read timeouts
MAX_WAIT_S = 55
MAX_VERSION_CHARS = 128


class AgentAPIView(APIView):
    """Agent token only (operator tokens and sessions are refused), JSON object bodies of at most 64 KiB."""

    authentication_classes = [AgentTokenAuthentication]
    permission_classes = [IsAgent]
    parser_classes = [JSONParser]
    renderer_classes = [JSONRenderer]  # agents speak JSON only: no browsable API, cheaper negotiation
    throttle_classes: list = []

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # authenticates first: strangers learn nothing about limits
        check_body_size(request.META)

    def body(self, request: Request) -> dict[str, Any]:
        return json_object(request.data)

    def agent(self, request: Request) -> AgentPrincipal:
        return request.user  # type: ignore[return-value]


def json_object(data: Any) -> dict[str, Any]:
    """A parsed agent body, refused unless it is a JSON object without NUL or unpaired surrogates."""
    if not isinstance(data, dict):
        raise ValidationError(
            f"The body must be a JSON object, got {type(data).__name__}.",
            details={"fields": {"(body)": "object"}},
        )
    bad = bad_text_path(data)
    if bad:
        raise invalid({bad: "must not contain NUL or unpaired surrogate characters"})
    return data


def agent_json(request: HttpRequest) -> dict[str, Any]:
    """``AgentAPIView().body()`` of a plain Django request. What agents send (``Content-Type`` exactly
    ``application/json``) is parsed here as DRF's Request parses it — no body read unless Content-Length
    says there is one, the same parser and encoding — without building a DRF Request; anything else goes
    through one (its media type negotiation, its 415)."""
    meta = request.META
    if meta.get("CONTENT_TYPE") != "application/json":
        return json_object(Request(request, parsers=[JSONParser()]).data)
    try:
        length = int(meta.get("CONTENT_LENGTH", meta.get("HTTP_CONTENT_LENGTH", 0)))
    except (ValueError, TypeError):
        length = 0
    if length == 0:
        return json_object({})
    context = {"encoding": request.encoding or settings.DEFAULT_CHARSET}
    return json_object(JSONParser().parse(io.BytesIO(request.body), "application/json", context))


def check_body_size(meta: dict[str, Any]) -> None:
    check_content_length(meta, limit=MAX_AGENT_BODY_BYTES, what="agent requests")


def invalid(fields: dict[str, str]) -> ValidationError:
    name, problem = next(iter(fields.items()))
    return ValidationError(f"Invalid input: {name}: {problem}", details={"fields": fields})


class HeartbeatInputSerializer(serializers.Serializer):
    agent_version = serializers.CharField(max_length=40)
    wireguard_public_key = serializers.CharField(max_length=60, required=False, allow_blank=True)
    runtimes = serializers.DictField(required=False, default=dict)
    desired_version = serializers.CharField(
        max_length=MAX_VERSION_CHARS, required=False, help_text="the desired_version of the last answer (watch)"
    )
    wait_s = serializers.IntegerField(
        min_value=0,
        max_value=MAX_WAIT_S,
        required=False,
        help_text="hold the request up to this long while desired_version is current (0: answer at once)",
    )


def heartbeat_input(data: dict[str, Any]) -> dict[str, Any]:
    """Validate by hand: this runs on every heartbeat, and a DRF serializer costs more than the queries."""
    fields: dict[str, str] = {}
    version = data.get("agent_version")
    if not isinstance(version, str) or not version.strip():
        fields["agent_version"] = "this field is required (a non-empty string)"
    elif len(version) > 40:
        fields["agent_version"] = "must be at most 40 characters"
    key = data.get("wireguard_public_key")
    key = None if key == "" else key  # null or "" mean "no key reported"; 0, false, [] or {} are wrong types
    if key is not None:
        if not isinstance(key, str):
            fields["wireguard_public_key"] = "must be a string"
        else:
            try:
                wireguard.check_public_key(key)
            except ValidationError as exc:
                fields["wireguard_public_key"] = exc.message
    runtimes = data.get("runtimes", {})
    if runtimes is None:
        runtimes = {}
    if not isinstance(runtimes, dict):
        fields["runtimes"] = "must be an object"
    else:
        for provider in runtime_providers():  # each registered runtime's report; other keys pass as they are
            report = runtimes.get(provider.name)
            if report is None:
                continue
            field = f"runtimes.{provider.name}"
            if not isinstance(report, dict):
                fields[field] = "must be an object"
            elif report.get("phase") is not None and report.get("phase") not in provider.phases:
                fields[f"{field}.phase"] = f"must be one of {', '.join(provider.phases)}"
            elif report.get("version") is not None and not isinstance(report.get("version"), str):
                fields[f"{field}.version"] = "must be a string"
        if len(json.dumps(runtimes)) > MAX_RUNTIME_REPORT_BYTES:
            fields["runtimes"] = f"must be at most {MAX_RUNTIME_REPORT_BYTES} bytes of JSON"
    known_version = data.get("desired_version")
    if known_version is not None and (not isinstance(known_version, str) or len(known_version) > MAX_VERSION_CHARS):
        fields["desired_version"] = f"must be a string of at most {MAX_VERSION_CHARS} characters"
    wait_s = data.get("wait_s")
    wait_s = 0 if wait_s is None else wait_s
    if isinstance(wait_s, bool) or not isinstance(wait_s, int) or not 0 <= wait_s <= MAX_WAIT_S:
        fields["wait_s"] = f"must be an integer from 0 to {MAX_WAIT_S}"
    if fields:
        raise invalid(fields)
    return {
        "agent_version": version,
        "wireguard_public_key": key,
        "runtimes": runtimes,
        "desired_version": known_version,
        "wait_s": wait_s,
    }


def heartbeat_params(params: dict[str, Any]) -> dict[str, Any]:
    """The arguments of ``agent_heartbeat`` among the validated input (the watch fields are the view's)."""
    return {k: params[k] for k in ("agent_version", "wireguard_public_key", "runtimes")}


class HeartbeatView(AgentAPIView):
    """The heartbeat as DRF sees it: its OpenAPI documentation (the route serves :func:`heartbeat`, which
    runs the same checks); called directly it answers at once and holds nothing."""

    @extend_schema(
        request=HeartbeatInputSerializer,
        responses={200: OpenApiTypes.OBJECT},
        operation_id="agent_heartbeat",
        tags=["agent"],
        description=(
            "Record a heartbeat; answers the instance's desired state with its desired_version. With "
            "desired_version current and wait_s > 0 the answer waits until the desired state changes or "
            "wait_s passes (docs/AGENT_PROTOCOL.md, Watch)."
        ),
    )
    def post(self, request: Request) -> Response:
        params = heartbeat_input(self.body(request))
        return Response(agent_heartbeat(instance=self.agent(request).instance, **heartbeat_params(params)))


# -- the served endpoint: an async view ------------------------------------------------------------------
_ALLOW = "POST, OPTIONS"


def _heartbeat_step(
    request: HttpRequest, loop: asyncio.AbstractEventLoop
) -> tuple[dict[str, Any], NodeInstance, dict[str, Any], watch.Waiter | None]:
    """Everything before the wait, in one trip to a worker thread: authenticate, check, subscribe (a watch
    request), record, read the desired state. Same order as the DRF views: 401, 405, 413, 415/400."""
    instance = AgentTokenAuthentication().authenticate(request)[0].instance  # it reads the headers only
    if request.method == "OPTIONS":
        options = {"name": "Heartbeat", "description": "", "renders": ["application/json"]}
        return {**options, "parses": ["application/json"]}, instance, {}, None
    if request.method != "POST":
        raise method_not_allowed(request.method or "")
    check_body_size(request.META)
    try:
        body = agent_json(request)
    except (drf.ParseError, drf.UnsupportedMediaType) as exc:
        raise application_error(exc) from None
    params = heartbeat_input(body)
    waiter = None
    if params["wait_s"] and params["desired_version"] is not None:
        waiter = watch.subscribe(instance_watch_topics(instance=instance), loop=loop)
    try:
        answer = agent_heartbeat(instance=instance, **heartbeat_params(params))
        if waiter is not None:
            waiter.add_topics(instance_watch_topics(instance=instance, answer=answer))
    except BaseException:
        if waiter is not None:
            waiter.close()
        raise
    return answer, instance, params, waiter


def _may_watch(request: HttpRequest) -> bool:
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return False
    return 0 < length <= MAX_AGENT_BODY_BYTES and b'"wait_s"' in request.body


@sessionless()  # an agent token, no session ever
@csrf_exempt
async def heartbeat(request: HttpRequest) -> HttpResponse:
    """``POST /api/v1/agent/heartbeat``: answer at once, or hold a watch request (DESIGN §4, Watch)."""
    if _may_watch(request):  # this process's LISTEN connection first (PostgreSQL; opened once)
        await watch.ready()
    try:
        with metrics.counted(metrics.HEARTBEATS):
            answer, instance, params, waiter = await db_call(_heartbeat_step)(request, asyncio.get_running_loop())
    except ApplicationError as err:
        response = error_response(err)
    else:
        if waiter is not None:
            answer = await watch.hold(
                waiter,
                answer=answer,
                known_version=params["desired_version"],
                wait_s=params["wait_s"],
                recompute=lambda: db_call(instance_desired_state)(instance=instance),
            )
        response = JsonResponse(answer)
    response["Allow"] = _ALLOW
    return response


heartbeat.cls = HeartbeatView  # drf-spectacular documents a route by its callback's APIView class
heartbeat.initkwargs = {}
