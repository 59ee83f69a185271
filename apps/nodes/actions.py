"""Operator actions for node templates and instances."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from apps.nodes import agent_dist, services
from apps.nodes.serializers import NodeInstanceSerializer, NodeTemplateSerializer
from powernode.actors import Actor
from powernode.errors import NotFound, ValidationError
from powernode.registry import action
from powernode.schema import name, obj, string, uuid_


@action(
    "system_create_node_template",
    permission="system.instance_manage",
    input_schema=obj(
        required={"name": name("unique template name")},
        optional={"description": string("free text", max_length=2000, min_length=0)},
    ),
    example={"name": "docker-nodes", "description": "Instances that run Docker Engine"},
)
def create_node_template(*, actor: Actor, name: str, description: str = "") -> dict[str, Any]:
    """Create a node template: the unit modules are assigned to."""
    template = services.template_create(name=name, description=description, actor=actor)
    return {"template": NodeTemplateSerializer(template).data}


@action(
    "system_provision_instance",
    permission="system.instance_manage",
    input_schema=obj(required={"template_id": uuid_("node template id"), "name": name("unique instance name")}),
)
def provision_instance(*, actor: Actor, template_id: str, name: str) -> dict[str, Any]:
    """Create a node instance from a template; returns the agent token once (it is stored hashed)."""
    result = services.instance_provision(template_id=template_id, name=name, actor=actor)
    command = None
    if settings.POWERNODE_PUBLIC_URL:  # the enrollment line with the token in it: shown once, like the token
        command = agent_dist.install_command(
            platform_url=settings.POWERNODE_PUBLIC_URL, agent_token=result.agent_token
        )
    return {
        "instance": NodeInstanceSerializer(result.instance).data,
        "agent_token": result.agent_token,
        "install_command": command,
    }


@action(
    "system_get_instance",
    permission="system.instance_view",
    input_schema=obj(required={"id": uuid_("node instance id")}),
    mutates=False,
)
def get_instance(*, actor: Actor, id: str) -> dict[str, Any]:  # noqa: A002 - the contract's field name
    """One node instance with its template id, SDWAN peers and docker host id."""
    return {"instance": NodeInstanceSerializer(services.instance_get(instance_id=id)).data}


@action(
    "system_agent_install_command",
    permission="system.instance_view",
    input_schema=obj(
        required={"id": uuid_("node instance id")},
        optional={
            "platform_url": string(
                "the URL nodes reach the platform at, http(s)://HOST[:PORT] (default POWERNODE_PUBLIC_URL)",
                max_length=300,
            )
        },
    ),
    mutates=False,
)
def agent_install_command(*, actor: Actor, id: str, platform_url: str = "") -> dict[str, Any]:  # noqa: A002
    """The line to run as root on the node to install the agent from this platform and enroll it; the token
    is not in it (it was shown once at provisioning): export POWERNODE_AGENT_TOKEN first."""
    instance = services.instance_get(instance_id=id)
    if instance.status == instance.Status.DELETED:
        raise NotFound(f"No node instance with id {id}.", details={"instance_id": id})
    base = platform_url or settings.POWERNODE_PUBLIC_URL
    if not base:
        raise ValidationError(
            "no platform URL: pass platform_url, or set POWERNODE_PUBLIC_URL on the platform",
            details={"platform_url": platform_url},
        )
    base = agent_dist.check_platform_url(base)
    wheel = agent_dist.agent_wheel()
    return {
        "instance_id": str(instance.id),
        "command": agent_dist.install_command(platform_url=base),
        "token_included": False,
        "token_hint": "export POWERNODE_AGENT_TOKEN=pna_... (from system_provision_instance; lost: "
        "manage.py rotate_agent_token) before running the command, as root on the node",
        "wheel": {
            "filename": wheel.filename,
            "version": wheel.version,
            "sha256": wheel.sha256,
            "url": base + wheel.path,
        },
    }
