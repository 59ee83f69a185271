"""Driving a connected host's dockerd for operators, over the overlay with the platform's client keypair.

Every call goes through ``apps.docker_hosts.adapters.engine`` (the only code that speaks Docker); the
daemon's errors arrive here already as DockerDaemonError (502) or NotFound (404).
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from apps.docker_hosts import kinds
from apps.docker_hosts.adapters.engine import DockerEngine, engine_for
from apps.docker_hosts.models import DockerHost
from apps.docker_hosts.selectors import host_client_tls, host_get
from apps.events.services import event_record
from powernode.actors import Actor
from powernode.db import fetch
from powernode.errors import HostNotConnectedError

# host id → (the row's TLS fields as stored, engine): reuse the engine without decrypting the key per call
_ENGINES: dict[str, tuple[tuple[str, ...], DockerEngine]] = {}

_HOST_FIELDS = ("id", "status", "api_endpoint", "node_instance_id", "client_cert_pem", "client_key_encrypted",
                "client_chain_pem")


def _host(host_id: str) -> DockerHost:
    """The few columns an operation needs, in plain SQL: every docker_* call starts here, and the ORM's
    query compilation would cost about as much as the daemon's answer."""
    table = DockerHost._meta.db_table
    cols = [DockerHost._meta.get_field(f).column for f in _HOST_FIELDS]
    rows = fetch(f"SELECT {', '.join(cols)} FROM {table} WHERE {cols[0]} = %s", [host_id])
    if not rows:
        return host_get(host_id=host_id)  # raises NotFound with the usual message
    return DockerHost(**dict(zip(_HOST_FIELDS, rows[0], strict=True)))


def _engine(host: DockerHost) -> DockerEngine:
    if host.status != DockerHost.Status.CONNECTED:
        raise HostNotConnectedError(
            f"Docker host {host.id} is {host.status}, not connected: "
            + (
                "wait for the agent to report ready (recent_events kind_prefix system.docker)."
                if host.status == DockerHost.Status.PENDING
                else "it no longer accepts operations."
            ),
            details={"host_id": host.id, "status": host.status},
        )
    stored = (host.api_endpoint, host.client_cert_pem, host.client_key_encrypted, host.client_chain_pem)
    cached = _ENGINES.get(host.id)
    if cached and cached[0] == stored and not cached[1].closed:
        return cached[1]
    tls = host_client_tls(host=host)
    if not tls:
        raise HostNotConnectedError(
            f"Docker host {host.id} has no platform client certificate yet.", details={"host_id": host.id}
        )
    engine = engine_for(host.id, endpoint=host.api_endpoint, **tls)
    _ENGINES[host.id] = (stored, engine)
    return engine


def _record(*, kind: str, host: DockerHost, actor: Actor, data: dict[str, Any]) -> None:
    with transaction.atomic():
        event_record(kind=kind, actor=actor, instance_id=host.node_instance_id, host_id=host.id, data=data)


def docker_image_pull(*, host_id: str, image: str, actor: Actor) -> dict[str, Any]:
    host = _host(host_id)
    pulled = _engine(host).pull_image(image)
    _record(kind=kinds.IMAGE_PULLED, host=host, actor=actor, data={"image": image, "id": pulled["id"]})
    return pulled


def docker_container_create(
    *,
    host_id: str,
    image: str,
    actor: Actor,
    name: str | None = None,
    ports: list[dict[str, Any]] | None = None,
    env: dict[str, str] | list[str] | None = None,
    command: str | list[str] | None = None,
    detach: bool = True,
) -> dict[str, Any]:
    host = _host(host_id)
    container = _engine(host).create_container(
        image=image, name=name, ports=ports or [], env=env, command=command, detach=detach
    )
    _record(
        kind=kinds.CONTAINER_CREATED,
        host=host,
        actor=actor,
        data={"container_id": container["id"], "name": container.get("name"), "image": image, "ports": ports or []},
    )
    return container


def docker_container_list(*, host_id: str, all: bool = False) -> list[dict[str, Any]]:  # noqa: A002
    return _engine(_host(host_id)).list_containers(all=all)


def docker_container_delete(*, host_id: str, container_id: str, force: bool = False, actor: Actor) -> None:
    host = _host(host_id)
    _engine(host).delete_container(container_id=container_id, force=force)
    _record(
        kind=kinds.CONTAINER_DELETED,
        host=host,
        actor=actor,
        data={"container_id": container_id, "force": force},
    )


def docker_image_delete(*, host_id: str, image_id: str, actor: Actor) -> None:
    host = _host(host_id)
    _engine(host).delete_image(image_id=image_id)
    _record(kind=kinds.IMAGE_DELETED, host=host, actor=actor, data={"image_id": image_id})
