"""``POST /api/v1/runtime/handshake``: the agent's side of the runtime phase machine (thin transport)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from apps.docker_hosts.handshake import runtime_handshake
from apps.docker_hosts.serializers import HandshakeInputSerializer
from apps.nodes.agent_views import AgentAPIView


class RuntimeHandshakeView(AgentAPIView):
    @extend_schema(
        request=HandshakeInputSerializer,
        responses={200: OpenApiTypes.OBJECT},
        operation_id="runtime_handshake",
        tags=["agent"],
        description="One phase of the runtime handshake for the agent's instance (docs/AGENT_PROTOCOL.md).",
    )
    def post(self, request: Request) -> Response:
        agent = self.agent(request)
        return Response(
            runtime_handshake(instance=agent.instance, payload=self.body(request), actor=agent.actor)
        )
