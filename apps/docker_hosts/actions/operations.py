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
# Options that would hand the node to a container: named, so the 400 says why instead of "unknown field".
REFUSED_OPTIONS = {
    "privileged": "privileged mode is never allowed: it makes the container root on the node",
    "binds": "bind mounts of node paths are never allowed: use named volumes (volumes: [{name, container_path}])",
    "mounts": "only named volumes are allowed: use volumes: [{name, container_path, read_only?}]",
    "network_mode": "network_mode is never settable: host networking would bypass the overlay /128 binding",
    "pid_mode": "pid_mode is never settable: the node's PID namespace is not shared with containers",
    "ipc_mode": "ipc_mode is never settable: the node's IPC namespace is not shared with containers",
    "userns_mode": "userns_mode is never settable: the node's user namespace is not shared with containers",
    "cap_add": "cap_add is never allowed: containers keep Docker's default capabilities",
    "devices": "devices are never allowed: node devices are not passed to containers",
    "security_opt": "security_opt is never settable: seccomp/AppArmor stay at Docker's defaults",
}
_REFUSED = {key: {"not": {}, "description": f"refused: {why}"} for key, why in REFUSED_OPTIONS.items()}
LABELS = {
    "type": "object",
    "additionalProperties": {"type": "string", "maxLength": 1024},
    "maxProperties": 64,
    "description": 'labels: {"key": "value"} (keys: letters, digits, . _ / -, at most 128)',
}
VOLUME = {
    "type": "object",
    "properties": {
        "name": string("named volume (created when missing), e.g. data", max_length=128,
                       pattern=r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$"),
        "container_path": string("absolute path inside the container, e.g. /data", max_length=255,
                                 pattern=r"^/(?!.*(?:^|/)\.\.(?:/|$))[^\x00-\x1f:]*$"),
        "read_only": boolean("mount read-only (default false)"),
    },
    "required": ["name", "container_path"],
    "additionalProperties": False,
}
TIMEOUT_S = integer("seconds to wait for the container to stop before SIGKILL (default 10)", minimum=0, maximum=120)
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
            "restart_policy": enum(["no", "always", "unless-stopped", "on-failure"], "restart policy (default no)"),
            "labels": LABELS,
            "volumes": {"type": "array", "items": VOLUME, "maxItems": 32},
            **_REFUSED,
        },
    ),
    example={
        "host_id": "host-00000000-0000-0000-0000-000000000000",
        "image": "registry.lab:5000/hello:1",
        "name": "hello",
        "ports": [{"host": 8080, "container": 80}],
        "restart_policy": "unless-stopped",
        "labels": {"team": "web"},
        "volumes": [{"name": "hello-data", "container_path": "/data"}],
    },
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
    restart_policy: str | None = None,
    labels: dict[str, str] | None = None,
    volumes: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Create and start a container; published ports listen on the host's overlay /128.

    Named volumes, labels and a restart policy are accepted; privileged mode, bind mounts, host
    namespaces, devices and added capabilities never are (400 saying why).
    """
    container = operations.docker_container_create(
        host_id=host_id, image=image, name=name, ports=ports, env=env, command=command, detach=detach,
        restart_policy=restart_policy, labels=labels, volumes=volumes, actor=actor,
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
    "docker_list_images",
    permission="system.docker_view",
    input_schema=obj(required={"host_id": HOST_ID}),
    mutates=False,
)
def list_images(*, actor: Actor, host_id: str) -> dict[str, Any]:
    """Images on a connected host: id, tags, size, created."""
    return {"images": operations.docker_image_list(host_id=host_id)}


@action(
    "docker_inspect_container",
    permission="system.docker_view",
    input_schema=obj(required={"host_id": HOST_ID, "container_id": CONTAINER_ID}),
    mutates=False,
)
def inspect_container(*, actor: Actor, host_id: str, container_id: str) -> dict[str, Any]:
    """One container: image, state, ports, restart policy, labels, volumes; env keys only, never their values."""
    return {"container": operations.docker_container_inspect(host_id=host_id, container_id=container_id)}


@action(
    "docker_container_logs",
    permission="system.docker_operate",
    input_schema=obj(
        required={"host_id": HOST_ID, "container_id": CONTAINER_ID},
        optional={
            "tail": integer("last N lines (default 200)", minimum=1, maximum=5000),
            "since": {
                "oneOf": [
                    {"type": "integer", "minimum": 0},
                    {"type": "string", "format": "date-time", "maxLength": 40},
                ],
                "description": "only lines after this: Unix seconds or RFC 3339, e.g. 2026-12-02T15:00:00Z",
            },
            "timestamps": boolean("prefix each line with its RFC 3339 time"),
        },
    ),
    mutates=False,
)
def container_logs(
    *, actor: Actor, host_id: str, container_id: str, tail: int = 200, since: Any = None, timestamps: bool = False
) -> dict[str, Any]:
    """A container's stdout and stderr, at most 1 MiB of text (truncated: true when cut there)."""
    return operations.docker_container_logs(
        host_id=host_id, container_id=container_id, tail=tail, since=since, timestamps=timestamps
    )


def _lifecycle(operation: str, doc: str, *, timeout: bool) -> None:
    optional = {"timeout_s": TIMEOUT_S} if timeout else {}

    def handler(*, actor: Actor, host_id: str, container_id: str, timeout_s: int | None = None) -> dict[str, Any]:
        return {
            "container": operations.docker_container_lifecycle(
                host_id=host_id, container_id=container_id, operation=operation, timeout_s=timeout_s, actor=actor
            )
        }

    handler.__doc__ = doc
    action(
        f"docker_{operation}_container",
        permission="system.docker_operate",
        input_schema=obj(required={"host_id": HOST_ID, "container_id": CONTAINER_ID}, optional=optional),
    )(handler)


_lifecycle("start", "Start a stopped container.", timeout=False)
_lifecycle("stop", "Stop a running container (SIGTERM, then SIGKILL after timeout_s).", timeout=True)
_lifecycle("restart", "Restart a container (stop with timeout_s, then start).", timeout=True)


@action(
    "docker_set_registry_credentials",
    permission="system.docker_provision",
    input_schema=obj(
        required={
            "registry": string("registry host[:port], e.g. registry.lab:5000", max_length=255,
                               pattern=rf"^{_NO_CONTROL}{_DOMAIN}$"),
            "username": string("registry user name", max_length=255, pattern=rf"^{_NO_CONTROL}[^:]+$"),
            "password": string("password or token: stored encrypted, never returned", max_length=4096),
        }
    ),
    example={"registry": "registry.lab:5000", "username": "puller", "password": "s3cret"},
)
def set_registry_credentials(*, actor: Actor, registry: str, username: str, password: str) -> dict[str, Any]:
    """Store the login pulls from a registry use (docker_pull_image sends it); the password is never returned."""
    row = operations.registry_credentials_set(registry=registry, username=username, password=password, actor=actor)
    return {"registry": {"registry": row.registry, "username": row.username}}


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
