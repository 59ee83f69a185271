"""Driving a connected host's dockerd for operators, over the overlay with the platform's client keypair.

Every call goes through ``apps.docker_hosts.adapters.engine`` (the only code that speaks Docker); the
daemon's errors arrive here already as DockerDaemonError (502) or NotFound (404).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.docker_hosts import kinds
from apps.docker_hosts.adapters.engine import DockerEngine, engine_for, registry_of
from apps.docker_hosts.models import DockerHost, RegistryCredential
from apps.docker_hosts.selectors import host_client_tls, host_get
from apps.events.services import event_record
from powernode import secretbox
from powernode.actors import Actor
from powernode.db import fetch
from powernode.errors import DockerDaemonError, HostNotConnectedError, ValidationError

_T = TypeVar("_T")
_LABEL_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,127}")

# host id → ((endpoint, client certificate serial), engine): the engine is reused, without reading the PEMs or
# decrypting the key, while the host keeps its endpoint and the platform's client keypair
_ENGINES: dict[str, tuple[tuple[str, str], DockerEngine]] = {}

_HOST_FIELDS = ("id", "status", "api_endpoint", "node_instance_id", "client_cert_serial", "api_version")
_HOST_SQL = ""


@dataclass(slots=True)
class _Host:
    """What an operation needs of its host row: every docker_* call reads it, so it stays small."""

    id: str
    status: str
    api_endpoint: str
    node_instance_id: Any
    client_cert_serial: str
    api_version: str


def _host(host_id: str) -> _Host:
    """The few small columns an operation needs, in plain SQL: every docker_* call starts here, and the
    ORM's query compilation and model construction would cost about as much as the daemon's answer. The
    status is read every call (an unreachable or decommissioned host is refused at once); the key material
    only when the engine has to be built (see ``_engine``)."""
    global _HOST_SQL
    if not _HOST_SQL:
        cols = [DockerHost._meta.get_field(f).column for f in _HOST_FIELDS]
        _HOST_SQL = f"SELECT {', '.join(cols)} FROM {DockerHost._meta.db_table} WHERE {cols[0]} = %s"
    rows = fetch(_HOST_SQL, [host_id])
    if not rows:
        host_get(host_id=host_id)  # raises NotFound with the usual message
    return _Host(*rows[0])


def _engine(host: _Host) -> DockerEngine:
    if host.status != DockerHost.Status.CONNECTED:
        raise HostNotConnectedError(
            f"Docker host {host.id} is {host.status}, not connected: "
            + {
                DockerHost.Status.PENDING: "wait for the agent to report ready (recent_events kind_prefix "
                "system.docker).",
                DockerHost.Status.UNREACHABLE: "the platform's probe cannot reach its daemon (node down, dockerd "
                "stopped or the tunnel down: system_sdwan_list_peers shows the tunnel); it is connected again "
                "as soon as the probe gets an answer.",
            }.get(host.status, "it no longer accepts operations."),
            details={"host_id": host.id, "status": host.status},
        )
    stored = (host.api_endpoint, host.client_cert_serial)
    cached = _ENGINES.get(host.id)
    if cached and cached[0] == stored and not cached[1].closed:
        return cached[1]
    # Built once per host and keypair: the PEMs and the encrypted key are read (and decrypted) only here.
    row = DockerHost.objects.only(
        "id", "api_endpoint", "client_cert_serial", "client_cert_pem", "client_key_encrypted", "client_chain_pem"
    ).filter(pk=host.id).first()
    tls = host_client_tls(host=row) if row is not None else {}
    if not tls:
        raise HostNotConnectedError(
            f"Docker host {host.id} has no platform client certificate yet.", details={"host_id": host.id}
        )
    engine = engine_for(
        host.id, endpoint=row.api_endpoint, refused_retry_s=settings.POWERNODE_DOCKER_REFUSED_RETRY_S, **tls
    )
    _ENGINES[host.id] = ((row.api_endpoint, row.client_cert_serial), engine)
    return engine


def _call(host: _Host, operation: Callable[[DockerEngine], _T]) -> _T:
    """Run ``operation`` on the host's engine; the API version it negotiated is kept on the host (once,
    and again whenever it changes: the daemon was upgraded) so operators see it."""
    engine = _engine(host)
    result = operation(engine)
    negotiated = getattr(engine, "api_version", None)
    if isinstance(negotiated, str) and negotiated and negotiated != host.api_version:
        DockerHost.objects.filter(pk=host.id).update(api_version=negotiated, updated_at=timezone.now())
        host.api_version = negotiated
    return result


def _record(*, kind: str, host: _Host, actor: Actor, data: dict[str, Any]) -> None:
    with transaction.atomic():
        event_record(kind=kind, actor=actor, instance_id=host.node_instance_id, host_id=host.id, data=data)


# what dockerd says when a registry refused the pull's login (none sent, or a wrong one)
_LOGIN_REFUSED = ("no basic auth credentials", "unauthorized", "authentication required")


def docker_image_pull(*, host_id: str, image: str, actor: Actor) -> dict[str, Any]:
    host = _host(host_id)
    auth = registry_auth_for(image)
    try:
        pulled = _call(host, lambda e: e.pull_image(image, auth=auth))
    except DockerDaemonError as exc:
        if not any(text in exc.message.lower() for text in _LOGIN_REFUSED):
            raise
        registry = registry_of(image)
        hint = (
            f"the login stored for {registry} was refused: store the right one with docker_set_registry_credentials"
            if auth else f"{registry} wants a login: store it with docker_set_registry_credentials"
        )
        raise DockerDaemonError(
            f"{exc.message} ({hint}).", details={**exc.details, "registry": registry, "login_sent": bool(auth)}
        ) from exc
    data = {"image": image, "id": pulled["id"]}
    if auth:
        data["registry_username"] = auth["username"]  # who pulled, never the password
    _record(kind=kinds.IMAGE_PULLED, host=host, actor=actor, data=data)
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
    restart_policy: str | None = None,
    labels: dict[str, str] | None = None,
    volumes: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    bad_keys = sorted(k for k in labels or {} if not _LABEL_KEY.fullmatch(k))
    if bad_keys:
        raise ValidationError(
            f"Invalid input for docker_create_container: labels: bad key(s) {', '.join(map(repr, bad_keys))}: "
            "letters, digits, '.', '_', '/', '-', at most 128, starting with a letter or digit",
            details={"fields": {"labels": f"bad key(s): {', '.join(bad_keys)}"}},
        )
    host = _host(host_id)
    container = _call(host, lambda e: e.create_container(
        image=image, name=name, ports=ports or [], env=env, command=command, detach=detach,
        restart_policy=restart_policy, labels=labels, volumes=volumes or [],
    ))
    data: dict[str, Any] = {
        "container_id": container["id"], "name": container.get("name"), "image": image, "ports": ports or [],
    }
    if restart_policy:
        data["restart_policy"] = restart_policy
    if volumes:
        data["volumes"] = [v["name"] for v in volumes]
    _record(kind=kinds.CONTAINER_CREATED, host=host, actor=actor, data=data)
    return container


def docker_container_list(*, host_id: str, all: bool = False) -> list[dict[str, Any]]:  # noqa: A002
    return _call(_host(host_id), lambda e: e.list_containers(all=all))


def docker_container_delete(*, host_id: str, container_id: str, force: bool = False, actor: Actor) -> None:
    host = _host(host_id)
    _call(host, lambda e: e.delete_container(container_id=container_id, force=force))
    _record(
        kind=kinds.CONTAINER_DELETED,
        host=host,
        actor=actor,
        data={"container_id": container_id, "force": force},
    )


def docker_image_delete(*, host_id: str, image_id: str, actor: Actor) -> None:
    host = _host(host_id)
    _call(host, lambda e: e.delete_image(image_id=image_id))
    _record(kind=kinds.IMAGE_DELETED, host=host, actor=actor, data={"image_id": image_id})


def docker_image_list(*, host_id: str) -> list[dict[str, Any]]:
    return _call(_host(host_id), lambda e: e.list_images())


def docker_container_inspect(*, host_id: str, container_id: str) -> dict[str, Any]:
    """A container's settings and state; env values never leave (the adapter returns the keys only)."""
    return _call(_host(host_id), lambda e: e.inspect_container(container_id=container_id))


def docker_container_logs(
    *, host_id: str, container_id: str, tail: int = 200, since: int | str | None = None, timestamps: bool = False
) -> dict[str, Any]:
    since_value = _since(since)
    return _call(_host(host_id), lambda e: e.container_logs(
        container_id=container_id, tail=tail, since=since_value, timestamps=timestamps
    ))


def _since(since: int | str | None) -> int | dt.datetime | None:
    if since is None or isinstance(since, int):
        return since or None
    try:
        parsed = dt.datetime.fromisoformat(since.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValidationError(
            "since is Unix seconds or an RFC 3339 time, e.g. 2026-12-02T15:00:00Z", details={"since": since}
        ) from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


_LIFECYCLE = {
    "start": (kinds.CONTAINER_STARTED, lambda e, cid, t: e.start_container(container_id=cid)),
    "stop": (kinds.CONTAINER_STOPPED, lambda e, cid, t: e.stop_container(container_id=cid, timeout_s=t)),
    "restart": (kinds.CONTAINER_RESTARTED, lambda e, cid, t: e.restart_container(container_id=cid, timeout_s=t)),
}


def docker_container_lifecycle(
    *, host_id: str, container_id: str, operation: str, actor: Actor, timeout_s: int | None = None
) -> dict[str, Any]:
    """start, stop or restart a container; the event names the container and what became of it."""
    kind, run = _LIFECYCLE[operation]
    host = _host(host_id)
    answer = _call(host, lambda e: run(e, container_id, timeout_s))
    container = {"id": answer["id"], "name": answer["name"], "status": answer["status"]}
    data: dict[str, Any] = {"container_id": container["id"], "name": container["name"], "status": container["status"]}
    if timeout_s is not None:
        data["timeout_s"] = timeout_s
    _record(kind=kind, host=host, actor=actor, data=data)
    return container


# --- registry credentials ----------------------------------------------------------------------------------


def registry_credentials_set(*, registry: str, username: str, password: str, actor: Actor) -> RegistryCredential:
    """Store (or replace) the login for ``registry``; the password only encrypted, never in the event."""
    registry = registry.lower()
    now = timezone.now()
    with transaction.atomic():
        row, created = RegistryCredential.objects.select_for_update().get_or_create(
            registry=registry,
            defaults={"username": username, "password_encrypted": secretbox.encrypt(password), "created_at": now,
                      "updated_at": now},
        )
        if not created:
            row.username = username
            row.password_encrypted = secretbox.encrypt(password)
            row.updated_at = now
            row.save(update_fields=["username", "password_encrypted", "updated_at"])
        event_record(
            kind=kinds.REGISTRY_CREDENTIALS_SET,
            actor=actor,
            data={"registry": registry, "username": username, "replaced": not created},
        )
    return row


def registry_auth_for(image: str) -> dict[str, str] | None:
    """The stored login of the registry ``image`` pulls from, decrypted for one pull, or None."""
    row = RegistryCredential.objects.filter(registry=registry_of(image)).only("username", "password_encrypted").first()
    if row is None:
        return None
    return {"username": row.username, "password": secretbox.decrypt(row.password_encrypted)}
