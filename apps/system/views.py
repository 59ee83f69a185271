"""HTTP transport of the action registry: list actions, run one."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from powernode.actors import Actor
from powernode.errors import PayloadTooLarge, ValidationError
from powernode.registry import MAX_INPUT_BYTES, all_actions, run_action

ActionListSerializer = inline_serializer(
    "ActionList",
    {
        "actions": serializers.ListField(
            child=inline_serializer(
                "ActionDescription",
                {
                    "name": serializers.CharField(),
                    "description": serializers.CharField(),
                    "permission": serializers.CharField(),
                    "input_schema": serializers.DictField(),
                },
            )
        )
    },
)


class ActionListView(APIView):
    @extend_schema(responses=ActionListSerializer, operation_id="actions_list", tags=["actions"])
    def get(self, request: Request) -> Response:
        """Every operator action with its description, permission and input JSON Schema."""
        return Response({"actions": [a.describe() for a in all_actions()]})


class ActionRunView(APIView):
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
