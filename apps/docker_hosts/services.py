"""Writes of the DockerHost lifecycle: certificate, config, promotion, failure, decommission.

Each function is one transaction that writes its event(s) with the change. The CA is called inside
that transaction: a CA failure (``CaUnavailableError``) rolls the host row back with it. Promotion to
``connected`` has exactly one path, ``docker_host_mark_ready`` (``system_mark_docker_ready``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from apps.docker_hosts.models import DockerHost, api_endpoint_for
from apps.docker_hosts.selectors import provisioning_wanted
from apps.events.services import event_record
from apps.modules.models import Module, ModuleAssignment
from apps.nodes.models import NodeInstance
from apps.pki.kv import kv_destroy_after_commit, kv_write_after_commit
from apps.pki.models import IssuedCertificate
from apps.pki.services import ca_issue_client_keypair, ca_revoke_host_certificates, ca_sign_host_csr
from apps.sdwan.models import SdwanPeer
from powernode import secretbox
from powernode.actors import Actor
from powernode.db import any_datetime, columns, db_uuid, fetch, inet_text, uuid_text
from powernode.errors import (
    HandshakePhaseError,
    HostDecommissionedError,
    MissingSdwanPeerError,
    NotFound,
    RuntimeNotAssignedError,
)

EVENT = "system.docker"
MAX_ERROR_CHARS = 2000
# The platform's client keypair is renewed at a re-handshake when it expires sooner than this.
CLIENT_RENEW_BEFORE = dt.timedelta(days=7)


@dataclass(frozen=True)
class HostCertificate:
    """The answer to ``wants_cert``: the host and the daemon's new server certificate."""

    host: DockerHost
    cert_pem: str
    chain_pem: str
    created: bool


def kv_path_for_host(host_id: str) -> str:
    return f"powernode/hosts/{host_id}/platform-client"


# -- helpers shared by the phases ------------------------------------------------------------------
# Each phase is a handful of indexed statements: the instance with its newest docker assignment (one
# SELECT), the instance's newest host (one SELECT ... FOR UPDATE), the change, its events.


@dataclass(frozen=True)
class _Context:
    instance: NodeInstance
    assigned_at: dt.datetime
    host: DockerHost | None  # the newest host: the live one when there is one


def _context(instance: NodeInstance, *, lock_instance: bool = False) -> _Context:
    """The instance with its newest docker assignment time, and its newest host (row-locked).

    ``lock_instance`` (wants_cert) serialises host creation per instance: two concurrent
    ``wants_cert`` queue on the instance row and the second finds the first one's host. Both reads
    are written as SQL: every handshake request runs them, and building them through the ORM cost
    three times their execution (bench/bench_handshake.py).
    """
    for_update = " FOR UPDATE" if connection.features.has_select_for_update else ""
    ni, ma, mo = NodeInstance._meta, ModuleAssignment._meta, Module._meta
    i_col, a_col = columns(NodeInstance), columns(ModuleAssignment)
    rows = fetch(
        f"SELECT i.name, i.status, i.{i_col['node_template']}, "
        f"(SELECT MAX(a.{a_col['created_at']}) FROM {ma.db_table} a JOIN {mo.db_table} m "
        f"ON m.id = a.{a_col['module']} WHERE a.{a_col['node_template']} = i.{i_col['node_template']} "
        f"AND m.runtime = %s) FROM {ni.db_table} i WHERE i.id = %s" + (for_update if lock_instance else ""),
        [Module.Runtime.DOCKER.value, db_uuid(instance.pk)],
    )
    if not rows:
        raise NotFound(f"No node instance with id {instance.pk}.", details={"instance_id": str(instance.pk)})
    name, status, template_id, assigned_at = rows[0]
    row = NodeInstance(id=instance.pk, name=name, status=status, node_template_id=uuid_text(template_id))
    if assigned_at is None:
        raise RuntimeNotAssignedError(
            f"The docker runtime is not assigned to the template of instance {row.name}: assign the "
            "docker-engine module (system_assign_module_to_template) before the handshake.",
            details={"instance_id": str(row.id), "template_id": str(row.node_template_id)},
        )
    # The newest host is the live one when one exists: a host is only created when none is live.
    h_col = columns(DockerHost)
    hosts = list(
        DockerHost.objects.raw(
            f"SELECT * FROM {DockerHost._meta.db_table} WHERE {h_col['node_instance']} = %s "
            f"ORDER BY {h_col['created_at']} DESC LIMIT 1{for_update}",
            [db_uuid(instance.pk)],
        )
    )
    return _Context(instance=row, assigned_at=any_datetime(assigned_at), host=hosts[0] if hosts else None)


def _live(ctx: _Context) -> DockerHost | None:
    """The live host, or None; refuses when the runtime ended (decommissioned under this assignment)."""
    host = ctx.host
    if host is None:
        return None
    if host.status == DockerHost.Status.DECOMMISSIONED:
        if not provisioning_wanted(assigned_at=ctx.assigned_at, host=host):
            _refuse_decommissioned(host)
        return None
    return host


def _refuse_decommissioning(host: DockerHost) -> None:
    if host.status == DockerHost.Status.DECOMMISSIONING:
        raise HandshakePhaseError(
            f"Host {host.id} is being decommissioned: stop dockerd, remove its key and certificate, then "
            "post the phase 'decommissioned'.",
            details={"host_id": host.id, "host_status": host.status, "expected_phase": "decommissioned"},
        )


def _refuse_decommissioned(host: DockerHost) -> None:
    raise HostDecommissionedError(
        f"Host {host.id} is decommissioned; it takes no more handshake phases. To run Docker on this "
        "instance again, unassign and re-assign the docker-engine module.",
        details={"host_id": host.id, "host_status": host.status},
    )


def _first_peer(instance: NodeInstance) -> tuple[str, str] | None:
    """(network id, overlay /128) of the instance's oldest SDWAN membership: the network the host joins."""
    col = columns(SdwanPeer)
    rows = fetch(
        f"SELECT {col['network']}, CAST({col['overlay_address']} AS TEXT) FROM {SdwanPeer._meta.db_table} "
        f"WHERE {col['node_instance']} = %s ORDER BY {col['created_at']} LIMIT 1",
        [db_uuid(instance.pk)],
    )
    return (uuid_text(rows[0][0]), inet_text(rows[0][1])) if rows else None


def _require_certificate(host: DockerHost | None, *, instance: NodeInstance, phase: str) -> DockerHost:
    """The live host a post-certificate phase applies to, or the 409 that names the phase to post."""
    if host is None:
        raise HandshakePhaseError(
            f"No certificate was issued for instance {instance.name} yet: post 'wants_cert' with a CSR "
            f"before '{phase}'.",
            details={"phase": phase, "expected_phase": "wants_cert"},
        )
    _refuse_decommissioning(host)
    if not host.has_certificate:
        raise HandshakePhaseError(
            f"Host {host.id} has no certificate yet: post 'wants_cert' before '{phase}'.",
            details={"host_id": host.id, "phase": phase, "expected_phase": "wants_cert"},
        )
    return host


def _save(host: DockerHost, *fields: str) -> None:
    """Write the named fields of a host whose row this transaction holds locked (one UPDATE)."""
    host.updated_at = timezone.now()
    values = {name: getattr(host, name) for name in (*fields, "updated_at")}
    DockerHost.objects.filter(pk=host.pk).update(**values)


# -- the handshake phases --------------------------------------------------------------------------


@transaction.atomic
def docker_runtime_installing(*, instance: NodeInstance, actor: Actor) -> DockerHost | None:
    """The agent started installing dockerd: an event (no host exists before ``wants_cert``)."""
    ctx = _context(instance)
    host = _live(ctx)
    if host is not None:
        _refuse_decommissioning(host)
    event_record(
        kind=f"{EVENT}.runtime.installing",
        actor=actor,
        instance_id=ctx.instance.id,
        host_id=host.id if host else "",
    )
    return host


@transaction.atomic
def docker_host_issue_certificate(*, instance: NodeInstance, csr_pem: str, actor: Actor) -> HostCertificate:
    """``wants_cert``: create (or reuse) the instance's host and sign the daemon's CSR for it.

    The CA sets CN = host id and the only SAN = the overlay /128, whatever the CSR asks. The first
    time (or when it nears expiry) the platform's own client keypair for the host is issued too,
    mirrored on the row (key encrypted) and queued for Vault KV after commit. A repeated call re-signs
    for the same host; the earlier certificates stay recorded and are revoked at decommission.
    """
    ctx = _context(instance, lock_instance=True)
    instance = ctx.instance
    host = _live(ctx)
    now = timezone.now()
    created = host is None
    if host is None:
        peer = _first_peer(instance)
        if peer is None:
            raise MissingSdwanPeerError(
                f"Instance {instance.name} has no SDWAN peer: the Docker daemon binds only to the instance's "
                "overlay /128 (never 0.0.0.0). Attach it with system_sdwan_attach_peer first.",
                details={"instances": [{"id": str(instance.id), "name": instance.name}]},
            )
        # The row is written once, after signing (its id is made here): one INSERT instead of two writes.
        host = DockerHost(
            node_instance_id=instance.id,
            network_id=peer[0],
            overlay_address=peer[1],
            api_endpoint=api_endpoint_for(peer[1]),
            created_at=now,
        )
    else:
        _refuse_decommissioning(host)
    event_record(
        kind=f"{EVENT}.handshake.wants_cert",
        actor=actor,
        instance_id=instance.id,
        host_id=host.id,
        data={"new_host": created, "overlay_address": host.overlay_address},
    )
    signed = ca_sign_host_csr(
        csr_pem=csr_pem, host_id=host.id, overlay_address=host.overlay_address, actor=actor
    )
    previous_serial = host.server_cert_serial
    host.server_cert_serial = signed.certificate.serial
    host.server_cert_not_after = signed.certificate.not_after
    host.cert_signed_at = now
    fields = ["server_cert_serial", "server_cert_not_after", "cert_signed_at"]
    if host.status in (DockerHost.Status.CONNECTED, DockerHost.Status.FAILED):
        # The agent is re-provisioning the daemon with a new certificate: it is not known to serve
        # until it reports ready again.
        host.status = DockerHost.Status.PENDING
        fields.append("status")
    if _client_keypair_needs_issuing(host, now):
        _issue_client_keypair(host, actor=actor)
        fields += ["client_cert_serial", "client_cert_pem", "client_key_encrypted", "client_chain_pem"]
        fields.append("client_cert_not_after")
    if created:
        host.updated_at = now
        host.save(force_insert=True)
    else:
        _save(host, *fields)
    event_record(
        kind=f"{EVENT}.handshake.cert_signed",
        actor=actor,
        instance_id=instance.id,
        host_id=host.id,
        data={
            "serial": host.server_cert_serial,
            "not_after": host.server_cert_not_after.isoformat(),
            "sans": [host.overlay_address],
            "replaces": previous_serial or None,
        },
    )
    return HostCertificate(host=host, cert_pem=signed.cert_pem, chain_pem=signed.chain_pem, created=created)


def _client_keypair_needs_issuing(host: DockerHost, now: dt.datetime) -> bool:
    if not host.client_cert_pem or host.client_cert_not_after is None:
        return True
    return host.client_cert_not_after - now < CLIENT_RENEW_BEFORE


def _issue_client_keypair(host: DockerHost, *, actor: Actor) -> None:
    issued = ca_issue_client_keypair(
        kind=IssuedCertificate.Kind.PLATFORM_CLIENT,
        common_name=f"platform:{host.id}",
        host_id=host.id,
        actor=actor,
    )
    host.client_cert_serial = issued.certificate.serial
    host.client_cert_pem = issued.cert_pem
    host.client_key_encrypted = secretbox.encrypt(issued.key_pem)
    host.client_chain_pem = issued.chain_pem
    host.client_cert_not_after = issued.certificate.not_after
    kv_write_after_commit(
        path=kv_path_for_host(host.id),
        data={
            "host_id": host.id,
            "serial": issued.certificate.serial,
            "cert_pem": issued.cert_pem,
            "key_pem": issued.key_pem,
            "chain_pem": issued.chain_pem,
        },
    )


@transaction.atomic
def docker_host_config_sent(*, instance: NodeInstance, actor: Actor) -> DockerHost:
    """``wants_config``: the daemon.json is about to be handed out; only after a certificate was issued."""
    ctx = _context(instance)
    host = _require_certificate(_live(ctx), instance=ctx.instance, phase="wants_config")
    host.config_sent_at = timezone.now()
    _save(host, "config_sent_at")
    event_record(
        kind=f"{EVENT}.handshake.wants_config", actor=actor, instance_id=ctx.instance.id, host_id=host.id
    )
    return host


def daemon_config(*, host: DockerHost) -> dict[str, Any]:
    """The daemon.json for a host: the overlay /128 on 2376 only, mutual TLS (docs/AGENT_PROTOCOL.md)."""
    return {
        "hosts": [host.api_endpoint],
        "tls": True,
        "tlsverify": True,
        "tlscacert": "/etc/docker/powernode/ca.pem",
        "tlscert": "/etc/docker/powernode/cert.pem",
        "tlskey": "/etc/docker/powernode/key.pem",
    }


@transaction.atomic
def docker_runtime_ready(*, instance: NodeInstance, version: str, actor: Actor) -> DockerHost:
    """``ready``: the agent reports dockerd up on the overlay; promotion goes through mark_ready."""
    ctx = _context(instance)
    host = _require_certificate(_live(ctx), instance=ctx.instance, phase="ready")
    return docker_host_mark_ready(host_id=host.id, version=version, actor=actor, locked_host=host)


@transaction.atomic(savepoint=False)
def docker_host_mark_ready(
    *, host_id: str, version: str, actor: Actor, locked_host: DockerHost | None = None
) -> DockerHost:
    """The one path to ``connected`` (``system_mark_docker_ready``): pending/failed → connected.

    Today it trusts the agent's report; a platform-side mTLS probe that holds a host at ``pending``
    until the daemon answers belongs here. A second ``ready`` changes nothing (a new engine version
    is recorded, without promotion events). ``locked_host``: the caller already holds the row lock.
    """
    host = locked_host
    if host is None or host.id != host_id:
        host = DockerHost.objects.select_for_update().filter(pk=host_id).first()
    if host is None:
        raise NotFound(f"No Docker host with id {host_id}.", details={"host_id": host_id})
    if host.status == DockerHost.Status.DECOMMISSIONED:
        _refuse_decommissioned(host)
    _refuse_decommissioning(host)
    if not host.has_certificate:
        raise HandshakePhaseError(
            f"Host {host.id} has no certificate yet: post 'wants_cert' before 'ready'.",
            details={"host_id": host.id, "phase": "ready", "expected_phase": "wants_cert"},
        )
    if host.status == DockerHost.Status.CONNECTED:
        if host.version != version:
            old, host.version = host.version, version
            _save(host, "version")
            event_record(
                kind=f"{EVENT}.host.version_changed",
                actor=actor,
                instance_id=host.node_instance_id,
                host_id=host.id,
                data={"from": old, "to": version},
            )
        return host
    previous = host.status
    host.status = DockerHost.Status.CONNECTED
    host.version = version
    host.connected_at = timezone.now()
    host.last_error = ""
    _save(host, "status", "version", "connected_at", "last_error")
    event_record(
        kind=f"{EVENT}.handshake.ready",
        actor=actor,
        instance_id=host.node_instance_id,
        host_id=host.id,
        data={"version": version, "from_status": previous},
    )
    event_record(
        kind=f"{EVENT}.provisioned",
        actor=actor,
        instance_id=host.node_instance_id,
        host_id=host.id,
        data={"api_endpoint": host.api_endpoint, "version": version},
    )
    return host


system_mark_docker_ready = docker_host_mark_ready  # the tutorial's name for the promotion


@transaction.atomic
def docker_runtime_failed(*, instance: NodeInstance, error: str, actor: Actor) -> DockerHost | None:
    """``failed``: the agent could not finish a step. The live host (if any) shows the error."""
    ctx = _context(instance)
    error = error[:MAX_ERROR_CHARS]
    host = _live(ctx)
    if host is not None:
        if host.status in (DockerHost.Status.PENDING, DockerHost.Status.CONNECTED):
            host.status = DockerHost.Status.FAILED
        host.failed_at = timezone.now()
        host.last_error = error
        _save(host, "status", "failed_at", "last_error")
    event_record(
        kind=f"{EVENT}.handshake.failed",
        actor=actor,
        instance_id=ctx.instance.id,
        host_id=host.id if host else "",
        data={"error": error},
    )
    return host


# -- decommission ----------------------------------------------------------------------------------


@transaction.atomic
def docker_host_request_decommission(*, host_id: str, actor: Actor) -> DockerHost:
    """``system_decommission_docker_runtime``: the host goes to ``decommissioning``; the next heartbeat
    orders the agent to stop dockerd. Asking again changes nothing. A host whose instance is gone
    ends at ``decommissioned`` at once.
    """
    host = DockerHost.objects.select_for_update().filter(pk=host_id).first()
    if host is None:
        raise NotFound(f"No Docker host with id {host_id}.", details={"host_id": host_id})
    if host.status == DockerHost.Status.DECOMMISSIONED:
        _refuse_decommissioned(host)
    if host.status == DockerHost.Status.DECOMMISSIONING:
        return host
    _mark_decommissioning(host, actor=actor, by="operator")
    instance_status = (
        NodeInstance.objects.filter(pk=host.node_instance_id).values_list("status", flat=True).first()
    )
    if instance_status == NodeInstance.Status.DELETED:
        _finish_decommission(host, actor=actor, reason="instance deleted")
    return host


def _mark_decommissioning(host: DockerHost, *, actor: Actor, by: str) -> None:
    host.status = DockerHost.Status.DECOMMISSIONING
    host.decommission_requested_at = timezone.now()
    _save(host, "status", "decommission_requested_at")
    event_record(
        kind=f"{EVENT}.decommission.requested",
        actor=actor,
        instance_id=host.node_instance_id,
        host_id=host.id,
        data={"by": by},
    )


@transaction.atomic
def docker_runtime_decommissioned(*, instance: NodeInstance, host_id: str, actor: Actor) -> DockerHost:
    """``decommissioned``: the agent stopped dockerd and removed its key; revoke and forget the host.

    Accepted for a host that was not ordered to decommission too (the daemon is gone either way, and
    the host's status must say so); another instance's host is a 404, as if it did not exist.
    """
    host = DockerHost.objects.select_for_update().filter(pk=host_id, node_instance_id=instance.id).first()
    if host is None:
        raise NotFound(f"No Docker host with id {host_id} on this instance.", details={"host_id": host_id})
    if host.status == DockerHost.Status.DECOMMISSIONED:
        _refuse_decommissioned(host)
    if host.status != DockerHost.Status.DECOMMISSIONING:
        _mark_decommissioning(host, actor=actor, by="agent")
    _finish_decommission(host, actor=actor, reason="agent confirmed")
    return host


def _finish_decommission(host: DockerHost, *, actor: Actor, reason: str) -> None:
    """Revoke every certificate ever issued for the host, drop the keypair (row and Vault), mark it."""
    revoked = ca_revoke_host_certificates(
        host_id=host.id, reason=f"host decommissioned ({reason})", actor=actor
    )
    had_keypair = bool(host.client_key_encrypted)
    host.status = DockerHost.Status.DECOMMISSIONED
    host.decommissioned_at = timezone.now()
    host.client_cert_pem = ""
    host.client_key_encrypted = ""
    host.client_chain_pem = ""
    _save(host, "status", "decommissioned_at", "client_cert_pem", "client_key_encrypted", "client_chain_pem")
    if had_keypair:
        # KV v2 keeps old versions: destroy them all, not only a newest "gone" version
        kv_destroy_after_commit(path=kv_path_for_host(host.id))
    event_record(
        kind=f"{EVENT}.decommissioned",
        actor=actor,
        instance_id=host.node_instance_id,
        host_id=host.id,
        data={"reason": reason, "revoked_serials": revoked},
    )


@transaction.atomic
def docker_hosts_end_for_instance(*, instance: NodeInstance, actor: Actor) -> list[DockerHost]:
    """The instance is gone: its live host is decommissioned at once (no agent left to confirm)."""
    ended = []
    for host in (
        DockerHost.objects.select_for_update()
        .filter(node_instance_id=instance.id)
        .exclude(status=DockerHost.Status.DECOMMISSIONED)
    ):
        if host.status != DockerHost.Status.DECOMMISSIONING:
            _mark_decommissioning(host, actor=actor, by="instance deletion")
        _finish_decommission(host, actor=actor, reason="instance deleted")
        ended.append(host)
    return ended
