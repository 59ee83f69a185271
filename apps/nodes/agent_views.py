"""HTTP endpoints agents call (Bearer ``pna_`` tokens): the base view and ``POST /api/v1/agent/heartbeat``."""

from __future__ import annotations

import json
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.nodes.agent_auth import AgentPrincipal, AgentTokenAuthentication, IsAgent
from apps.nodes.heartbeat import agent_heartbeat
from apps.sdwan import wireguard
from powernode.errors import PayloadTooLarge, ValidationError
from powernode.parsers import JSONParser
from powernode.runtimes import providers as runtime_providers
from powernode.text import bad_text_path

MAX_AGENT_BODY_BYTES = 64 * 1024
MAX_RUNTIME_REPORT_BYTES = 4 * 1024


class AgentAPIView(APIView):
    """Agent token only (operator tokens and sessions are refused), JSON object bodies of at most 64 KiB."""

    authentication_classes = [AgentTokenAuthentication]
    permission_classes = [IsAgent]
    parser_classes = [JSONParser]
    renderer_classes = [JSONRenderer]  # agents speak JSON only: no browsable API, cheaper negotiation
    throttle_classes: list = []

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # authenticates first: strangers learn nothing about limits
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > MAX_AGENT_BODY_BYTES:
            raise PayloadTooLarge(
                f"The body is {length} bytes; agent requests are limited to {MAX_AGENT_BODY_BYTES}.",
                details={"limit": MAX_AGENT_BODY_BYTES},
            )

    def body(self, request: Request) -> dict[str, Any]:
        data = request.data
        if not isinstance(data, dict):
            raise ValidationError(
                f"The body must be a JSON object, got {type(data).__name__}.",
                details={"fields": {"(body)": "object"}},
            )
        bad = bad_text_path(data)
        if bad:
            raise invalid({bad: "must not contain NUL or unpaired surrogate characters"})
        return data

    def agent(self, request: Request) -> AgentPrincipal:
        return request.user  # type: ignore[return-value]


def invalid(fields: dict[str, str]) -> ValidationError:
    name, problem = next(iter(fields.items()))
    return ValidationError(f"Invalid input: {name}: {problem}", details={"fields": fields})


class HeartbeatInputSerializer(serializers.Serializer):
    agent_version = serializers.CharField(max_length=40)
    wireguard_public_key = serializers.CharField(max_length=60, required=False, allow_blank=True)
    runtimes = serializers.DictField(required=False, default=dict)


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
    if fields:
        raise invalid(fields)
    return {"agent_version": version, "wireguard_public_key": key, "runtimes": runtimes}


class HeartbeatView(AgentAPIView):
    @extend_schema(
        request=HeartbeatInputSerializer,
        responses={200: OpenApiTypes.OBJECT},
        operation_id="agent_heartbeat",
        tags=["agent"],
        description="Record a heartbeat; answers the instance's desired state (docs/AGENT_PROTOCOL.md).",
    )
    def post(self, request: Request) -> Response:
        params = heartbeat_input(self.body(request))
        return Response(agent_heartbeat(instance=self.agent(request).instance, **params))
