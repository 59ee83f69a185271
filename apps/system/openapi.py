"""OpenAPI: Bearer auth schemes, and one documented path per registered action (from its input schema)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class OperatorTokenScheme(OpenApiAuthenticationExtension):
    target_class = "apps.system.authentication.OperatorTokenAuthentication"
    name = "operatorToken"

    def get_security_definition(self, auto_schema) -> dict[str, Any]:  # noqa: ANN001
        return {"type": "http", "scheme": "bearer", "description": "pno_… token from create_operator_token"}


class AgentTokenScheme(OpenApiAuthenticationExtension):
    target_class = "apps.nodes.agent_auth.AgentTokenAuthentication"
    name = "agentToken"

    def get_security_definition(self, auto_schema) -> dict[str, Any]:  # noqa: ANN001
        return {"type": "http", "scheme": "bearer", "description": "pna_… token from system_provision_instance"}


class HubTokenScheme(OpenApiAuthenticationExtension):
    target_class = "apps.sdwan.hub_auth.HubTokenAuthentication"
    name = "hubToken"

    def get_security_definition(self, auto_schema) -> dict[str, Any]:  # noqa: ANN001
        return {"type": "http", "scheme": "bearer", "description": "pnh_… token from system_sdwan_create_hub_token"}


def add_action_paths(result: dict[str, Any], generator, request, public) -> dict[str, Any]:  # noqa: ANN001
    """Document each action as its own POST path, with its input schema as the request body."""
    from powernode.registry import all_actions

    error = {"$ref": "#/components/schemas/Error"}
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = {
        "type": "object",
        "properties": {
            "error": {
                "type": "object",
                "properties": {
                    "type": {"type": "string"},
                    "message": {"type": "string"},
                    "details": {"type": "object", "additionalProperties": True},
                },
                "required": ["type", "message", "details"],
            }
        },
        "required": ["error"],
    }
    for action in all_actions():
        result["paths"][f"/api/v1/actions/{action.name}"] = {
            "post": {
                "operationId": f"action_{action.name}",
                "summary": action.name,
                "description": f"{action.description}\n\nPermission: `{action.permission}`.",
                "tags": ["actions"],
                "security": [{"operatorToken": []}, {"cookieAuth": []}],
                "requestBody": {"content": {"application/json": {"schema": action.input_schema}}},
                "responses": {
                    "200": {
                        "description": "the action's output",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    },
                    **{
                        code: {"description": text, "content": {"application/json": {"schema": error}}}
                        for code, text in [
                            ("400", "invalid input (ValidationError)"),
                            ("401", "not authenticated"),
                            ("403", "missing permission (PermissionDenied)"),
                            ("404", "unknown object (NotFound)"),
                            ("409", "state conflict"),
                            ("502", "the managed daemon or the CA failed"),
                        ]
                    },
                },
            }
        }
    return result
