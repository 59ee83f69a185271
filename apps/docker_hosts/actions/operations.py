"""Operator actions that drive a connected host's dockerd (docker_*) and export operator certificates."""

from __future__ import annotations

from typing import Any

from apps.docker_hosts.actions.hosts import HOST_ID
from apps.docker_hosts.services import operations, operator_cert
from powernode.actors import Actor
from powernode.registry import action
from powernode.schema import boolean, enum, integer, obj, string, uuid_

# What a Docker id, name or image reference may look like (docker/distribution's reference grammar): the
# engine adapter puts these into request paths, so "../volumes/data" must never get that far. The
# lookahead refuses control characters: in Python a JSON Schema "$" also matches before a final newline.
_NO_CONTROL = r"(?![\s\S]*[\x00-\x1f\x7f])"
_DOMAIN = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]{1,5})?"
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"  # never "..", never empty: no path tricks
_REFERENCE = (
    rf"(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?"
)
CONTAINER_ID_PATTERN = rf"^{_NO_CONTROL}(?:[0-9a-f]{{12,64}}|[a-zA-Z0-9][a-zA-Z0-9_.-]*)$"
IMAGE_PATTERN = rf"^{_NO_CONTROL}{_REFERENCE}$"
IMAGE_ID_PATTERN = rf"^{_NO_CONTROL}(?:sha256:[0-9a-f]{{64}}|[0-9a-f]{{12,64}}|{_REFERENCE})$"

IMAGE = string("image reference, e.g. registry.lab:5000/hello:1", max_length=255, pattern=IMAGE_PATTERN)
CONTAINER_ID = string(
    "container id (64 hex digits or a 12+ digit prefix) or name, e.g. hello",
    max_length=128,
    pattern=CONTAINER_ID_PATTERN,
)
IMAGE_ID = string(
    "image id (sha256:<hex> or a 12+ hex digit prefix) or reference, e.g. registry.lab:5000/hello:1",
    max_length=255,
    pattern=IMAGE_ID_PATTERN,
)
PORT = {
    "type": "object",
    "properties": {
        "host": integer("port on the host's overlay address", minimum=1, maximum=65535),
        "container": integer("port inside the container", minimum=1, maximum=65535),
        "protocol": enum(["tcp", "udp"], "default tcp"),
    },
    "required": ["host", "container"],
    "additionalProperties": False,
}
ENV = {
    "oneOf": [
        {"type": "object", "additionalProperties": {"type": "string"}},
        {"type": "array", "items": {"type": "string", "pattern": "^[^=]+="}},
    ],
    "description": 'environment: {"KEY": "value"} or ["KEY=value"]',
}
COMMAND = {
    "oneOf": [{"type": "string", "minLength": 1}, {"type": "array", "items": {"type": "string"}, "minItems": 1}],
    "description": "command: a string or an argv list",
}


@action(
    "docker_pull_image",
    permission="system.docker_operate",
    input_schema=obj(required={"host_id": HOST_ID, "image": IMAGE}),
)
def pull_image(*, actor: Actor, host_id: str, image: str) -> dict[str, Any]:
    """Pull an image onto a connected host."""
    return {"image": operations.docker_image_pull(host_id=host_id, image=image, actor=actor)}


@action(
    "docker_create_container",
    permission="system.docker_operate",
    input_schema=obj(
        required={"host_id": HOST_ID, "image": IMAGE},
        optional={
            "name": string("container name", max_length=128, pattern=r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$"),
            "ports": {"type": "array", "items": PORT, "maxItems": 64},
            "env": ENV,
            "command": COMMAND,
            "detach": boolean("start it and return at once (default true)"),
        },
    ),
)
def create_container(
    *,
    actor: Actor,
    host_id: str,
    image: str,
    name: str | None = None,
    ports: list[dict[str, Any]] | None = None,
    env: Any = None,
    command: Any = None,
    detach: bool = True,
) -> dict[str, Any]:
    """Create and start a container; published ports listen on the host's overlay /128."""
    container = operations.docker_container_create(
        host_id=host_id, image=image, name=name, ports=ports, env=env, command=command, detach=detach, actor=actor
    )
    return {"container": container}


@action(
    "docker_list_containers",
    permission="system.docker_view",
    input_schema=obj(required={"host_id": HOST_ID}, optional={"all": boolean("include stopped containers")}),
    mutates=False,
)
def list_containers(*, actor: Actor, host_id: str, all: bool = False) -> dict[str, Any]:  # noqa: A002
    """Containers on a connected host, as the daemon reports them."""
    return {"containers": operations.docker_container_list(host_id=host_id, all=all)}


@action(
    "docker_delete_container",
    permission="system.docker_operate",
    input_schema=obj(
        required={"host_id": HOST_ID, "container_id": CONTAINER_ID},
        optional={"force": boolean("kill it first if running")},
    ),
)
def delete_container(*, actor: Actor, host_id: str, container_id: str, force: bool = False) -> dict[str, Any]:
    """Remove a container from a connected host."""
    operations.docker_container_delete(host_id=host_id, container_id=container_id, force=force, actor=actor)
    return {"deleted": {"host_id": host_id, "container_id": container_id}}


@action(
    "docker_delete_image",
    permission="system.docker_operate",
    input_schema=obj(required={"host_id": HOST_ID, "image_id": IMAGE_ID}),
)
def delete_image(*, actor: Actor, host_id: str, image_id: str) -> dict[str, Any]:
    """Remove an image from a connected host."""
    operations.docker_image_delete(host_id=host_id, image_id=image_id, actor=actor)
    return {"deleted": {"host_id": host_id, "image_id": image_id}}


@action(
    "system_export_operator_cert",
    permission="system.docker_cli",
    input_schema=obj(
        required={"network_id": uuid_("SDWAN network id: only that network's hosts accept the certificate")},
        optional={
            "ttl_minutes": integer(
                f"lifetime in minutes (default {operator_cert.DEFAULT_TTL_MINUTES})",
                minimum=1,
                maximum=operator_cert.MAX_TTL_MINUTES,
            )
        },
    ),
)
def export_operator_cert(
    *, actor: Actor, network_id: str, ttl_minutes: int = operator_cert.DEFAULT_TTL_MINUTES
) -> dict[str, Any]:
    """A short-lived client certificate for you, for the Docker CLI (--tlsverify) on the hosts of one network.

    The Docker CLI is root on a host, so this needs system.docker_cli.
    """
    return operator_cert.operator_cert_export(actor=actor, network_id=network_id, ttl_minutes=ttl_minutes)
