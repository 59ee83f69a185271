"""Writes of the handshake phases: installing, the certificate, the config, promotion, failure.

Each function is one transaction that writes its event(s) with the change. The CA is called inside
that transaction: a CA failure (``CaUnavailableError``) rolls the host row back with it. Promotion to
``connected`` has exactly one path, ``docker_host_mark_ready`` (``system_mark_docker_ready``).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Min
from django.utils import timezone

from apps.docker_hosts import kinds, phases
from apps.docker_hosts.models import DockerHost, api_endpoint_for
from apps.docker_hosts.selectors import provisioning_wanted
from apps.docker_hosts.services.client_keypair import (
    CLIENT_KEYPAIR_FIELDS,
    client_keypair_issue,
    client_keypair_needs_issuing,
)
from apps.docker_hosts.services.host_state import refuse_decommissioned, refuse_decommissioning, save_fields
from apps.docker_hosts.services.probe import forget_pooled_connections, probe_host_daemon
from apps.events.services import event_record
from apps.modules.models import Module, ModuleAssignment
from apps.nodes.models import NodeInstance
from apps.pki.models import IssuedCertificate
from apps.pki.services import (
    ca_chain_pem,
    ca_client_ca_pem,
    ca_revoke_replaced_server_certificates,
    ca_server_certificate_for_same_key,
    ca_sign_host_csr,
)
from apps.sdwan.models import SdwanPeer
from powernode.actors import Actor
from powernode.db import any_datetime, columns, db_uuid, fetch, inet_text, uuid_text
from powernode.errors import (
    ApplicationError,
    HandshakePhaseError,
    HostNotConnectedError,
    MissingSdwanPeerError,
    NotFound,
    RateLimitedError,
    RuntimeNotAssignedError,
)

MAX_ERROR_CHARS = 2000


@dataclass(frozen=True)
class HostCertificate:
    """The answer to ``wants_cert``: the host, the daemon's new server certificate with its chain, and the
    client CA of the host's network: the only CA the daemon trusts for clients (``tlscacert``)."""

    host: DockerHost
    cert_pem: str
    chain_pem: str
    created: bool
    client_ca_pem: str = ""


# -- what every phase reads first -------------------------------------------------------------------
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
            refuse_decommissioned(host)
        return None
    return host


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
            f"No certificate was issued for instance {instance.name} yet: post '{phases.WANTS_CERT}' with a CSR "
            f"before '{phase}'.",
            details={"phase": phase, "expected_phase": phases.WANTS_CERT},
        )
    refuse_decommissioning(host)
    if not host.has_certificate:
        raise HandshakePhaseError(
            f"Host {host.id} has no certificate yet: post '{phases.WANTS_CERT}' before '{phase}'.",
            details={"host_id": host.id, "phase": phase, "expected_phase": phases.WANTS_CERT},
        )
    return host


def _refuse_past_cert_limit(instance: NodeInstance, now: dt.datetime) -> None:
    """429 when the instance had POWERNODE_WANTS_CERT_LIMIT server certificates in the window already.

    Counted from the CA's records (any of the instance's hosts), under the instance's row lock, so the
    limit holds across platform processes and concurrent requests.
    """
    limit, window_s = settings.POWERNODE_WANTS_CERT_LIMIT, settings.POWERNODE_WANTS_CERT_WINDOW_S
    window = dt.timedelta(seconds=window_s)
    recent = IssuedCertificate.objects.filter(
        kind=IssuedCertificate.Kind.SERVER,
        created_at__gte=now - window,
        host_id__in=DockerHost.objects.filter(node_instance_id=instance.id).values("id"),
    ).aggregate(n=Count("id"), oldest=Min("created_at"))
    if recent["n"] < limit:
        return
    retry_after_s = max(1, math.ceil((recent["oldest"] + window - now).total_seconds()))
    raise RateLimitedError(
        f"Instance {instance.name} was issued {recent['n']} server certificates in the last {window_s} s "
        f"(the limit is {limit}): post '{phases.WANTS_CERT}' again in {retry_after_s} s.",
        details={"retry_after_s": retry_after_s, "limit": limit, "window_s": window_s},
    )


# -- the phases ------------------------------------------------------------------------------------


@transaction.atomic
def docker_runtime_installing(*, instance: NodeInstance, actor: Actor) -> DockerHost | None:
    """The agent started installing dockerd: an event (no host exists before ``wants_cert``)."""
    ctx = _context(instance)
    host = _live(ctx)
    if host is not None:
        refuse_decommissioning(host)
    event_record(kind=kinds.INSTALLING, actor=actor, instance_id=ctx.instance.id, host_id=host.id if host else "")
    return host


@transaction.atomic
def docker_host_issue_certificate(
    *, instance: NodeInstance, csr_pem: str, actor: Actor, renew: bool = False
) -> HostCertificate:
    """``wants_cert``: create (or reuse) the instance's host and sign the daemon's CSR for it.

    The CA sets CN = host id and the only SAN = the overlay /128, whatever the CSR asks. The first
    time (or when it nears expiry) the platform's own client keypair for the host is issued too,
    mirrored on the row (key encrypted) and queued for Vault KV after commit. A repeated call re-signs
    for the same host; the earlier certificates stay valid until the agent confirms the new one
    (``ready``), then they are revoked. A repeated call with the same key as the host's current certificate
    (an agent that lost the answer) gets that certificate again, not a second one (unless it is revoked or
    due for renewal). At most settings.POWERNODE_WANTS_CERT_LIMIT server certificates
    per instance in POWERNODE_WANTS_CERT_WINDOW_S: past that a 429 (``RateLimitedError``).

    ``renew`` (the agent answers a ``renew`` order, DESIGN §4 "Renewal"): only for a connected host (else a
    409 and nothing written); the host stays ``connected`` and keeps its id, CN and SAN; the old serial is
    revoked at the next ``ready`` (``system.docker.cert.renewed``).
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
        refuse_decommissioning(host)
    if renew and (created or host.status not in (DockerHost.Status.CONNECTED, DockerHost.Status.UNREACHABLE)):
        raise HostNotConnectedError(
            f"Instance {instance.name} has no connected Docker host to renew"
            + (f" (host {host.id} is {host.status})" if not created else "")
            + f": post '{phases.WANTS_CERT}' without renew to provision it.",
            details={"host_id": None if created else host.id, "status": None if created else host.status},
        )
    # The same key again (not a renewal): the agent lost the answer to its earlier wants_cert; it gets the
    # certificate it was issued then, not a second one for one key.
    resent = (
        None
        if created or renew
        else ca_server_certificate_for_same_key(serial=host.server_cert_serial, csr_pem=csr_pem, now=now)
    )
    if resent is None:
        _refuse_past_cert_limit(instance, now)
    event_record(
        kind=kinds.WANTS_CERT,
        actor=actor,
        instance_id=instance.id,
        host_id=host.id,
        data={
            "new_host": created,
            "overlay_address": host.overlay_address,
            **({"renew": True} if renew else {}),
            **({"resent_serial": resent.serial} if resent is not None else {}),
        },
    )
    fields: list[str] = []
    if resent is None:
        signed = ca_sign_host_csr(
            csr_pem=csr_pem, host_id=host.id, overlay_address=host.overlay_address, actor=actor
        )
        cert_pem, chain_pem = signed.cert_pem, signed.chain_pem
        previous_serial = host.server_cert_serial
        host.server_cert_serial = signed.certificate.serial
        host.server_cert_not_after = signed.certificate.not_after
        host.cert_signed_at = now
        fields += ["server_cert_serial", "server_cert_not_after", "cert_signed_at"]
    else:
        cert_pem, chain_pem = resent.cert_pem, ca_chain_pem()
    if not renew and host.status in (
        DockerHost.Status.CONNECTED, DockerHost.Status.UNREACHABLE, DockerHost.Status.FAILED
    ):
        # The agent is re-provisioning the daemon with a new certificate: it is not known to serve
        # until it reports ready again.
        host.status = DockerHost.Status.PENDING
        fields.append("status")
    client_ca_pem = ca_client_ca_pem(network_id=str(host.network_id))
    if client_keypair_needs_issuing(host, now, client_ca_pem=client_ca_pem):
        client_keypair_issue(host=host, actor=actor)
        fields += CLIENT_KEYPAIR_FIELDS
    if created:
        host.updated_at = now
        host.save(force_insert=True)
    elif fields:
        save_fields(host, *fields)
    if resent is not None:
        return HostCertificate(
            host=host, cert_pem=cert_pem, chain_pem=chain_pem, created=created, client_ca_pem=client_ca_pem
        )
    event_record(
        kind=kinds.CERT_SIGNED,
        actor=actor,
        instance_id=instance.id,
        host_id=host.id,
        data={
            "serial": host.server_cert_serial,
            "not_after": host.server_cert_not_after.isoformat(),
            "sans": [host.overlay_address],
            "replaces": previous_serial or None,
            **({"renew": True} if renew else {}),
        },
    )
    return HostCertificate(
        host=host, cert_pem=cert_pem, chain_pem=chain_pem, created=created, client_ca_pem=client_ca_pem
    )


@transaction.atomic
def docker_host_config_sent(*, instance: NodeInstance, actor: Actor) -> DockerHost:
    """``wants_config``: the daemon.json is about to be handed out; only after a certificate was issued."""
    ctx = _context(instance)
    host = _require_certificate(_live(ctx), instance=ctx.instance, phase=phases.WANTS_CONFIG)
    host.config_sent_at = timezone.now()
    save_fields(host, "config_sent_at")
    event_record(kind=kinds.WANTS_CONFIG, actor=actor, instance_id=ctx.instance.id, host_id=host.id)
    return host


def daemon_config(*, host: DockerHost) -> dict[str, Any]:
    """The daemon.json for a host: the overlay /128 on 2376 only, mutual TLS (docs/AGENT_PROTOCOL.md).

    ``ip`` is the default address of ports published without one (``docker run -p 8080:80`` from the CLI):
    the overlay /128, so they are reachable through the SDWAN only, not on every interface of the node.
    ``tlscacert`` is where the agent writes ``client_ca_pem`` from ``wants_cert``: the host's network's
    client CA alone, so the daemon accepts no client certificate made for another network.
    ``live-restore``: containers keep running while dockerd restarts (a certificate renewal, DESIGN §4).
    """
    return {
        "hosts": [host.api_endpoint],
        "ip": host.overlay_address,
        "tls": True,
        "tlsverify": True,
        "tlscacert": "/etc/docker/powernode/ca.pem",
        "tlscert": "/etc/docker/powernode/cert.pem",
        "tlskey": "/etc/docker/powernode/key.pem",
        "live-restore": True,
    }


@transaction.atomic
def docker_runtime_ready(
    *, instance: NodeInstance, version: str, actor: Actor, cert_serial: str | None = None
) -> DockerHost:
    """``ready``: the agent reports dockerd up on the overlay; promotion goes through mark_ready."""
    ctx = _context(instance)
    host = _require_certificate(_live(ctx), instance=ctx.instance, phase=phases.READY)
    return docker_host_mark_ready(
        host_id=host.id, version=version, actor=actor, locked_host=host, cert_serial=cert_serial
    )


@transaction.atomic(savepoint=False)
def docker_host_mark_ready(
    *,
    host_id: str,
    version: str,
    actor: Actor,
    locked_host: DockerHost | None = None,
    cert_serial: str | None = None,
) -> DockerHost:
    """The one path to ``connected`` (``system_mark_docker_ready``): pending/failed → connected.

    Promotion needs the platform's own probe (``probe_host_daemon``: mTLS to the daemon through the
    overlay, its version read) to succeed; otherwise the host keeps its status with the probe's error as
    ``last_error`` (event ``system.docker.handshake.probe_failed``) and the agent posts ``ready`` again
    later. Settings POWERNODE_DOCKER_READY_PROBE=false skips the probe (test suites without daemons).
    The host's server certificates other than its newest are revoked (a repeated ``wants_cert`` replaced
    them); on a connected host that is a renewal (``system.docker.cert.renewed``). A second ``ready``
    changes nothing else (a new engine version is recorded, without promotion events). An unreachable
    host that posts ``ready`` and answers the probe is connected again (``system.docker.host.recovered``).
    ``locked_host``: the caller already holds the row lock.

    ``cert_serial`` (the agent's ``ready`` says which certificate dockerd was started with): when it is not
    the newest one, the daemon still serves a certificate that a ``wants_cert`` replaced (the agent stopped
    between that ``wants_cert`` and writing the new files): nothing is revoked, the renewal stays in flight
    and the heartbeat keeps ordering ``renew`` until a ``ready`` with the newest serial.
    """
    host = locked_host
    if host is None or host.id != host_id:
        host = DockerHost.objects.select_for_update().filter(pk=host_id).first()
    if host is None:
        raise NotFound(f"No Docker host with id {host_id}.", details={"host_id": host_id})
    if host.status == DockerHost.Status.DECOMMISSIONED:
        refuse_decommissioned(host)
    refuse_decommissioning(host)
    if not host.has_certificate:
        raise HandshakePhaseError(
            f"Host {host.id} has no certificate yet: post '{phases.WANTS_CERT}' before '{phases.READY}'.",
            details={"host_id": host.id, "phase": phases.READY, "expected_phase": phases.WANTS_CERT},
        )
    replaced: list[str] = []
    if cert_serial is None or cert_serial == host.server_cert_serial:
        # The daemon confirmed the newest certificate: the ones a repeated wants_cert replaced stop being valid.
        replaced = ca_revoke_replaced_server_certificates(
            host_id=host.id, current_serial=host.server_cert_serial, actor=actor
        )
    if replaced and host.status in (DockerHost.Status.CONNECTED, DockerHost.Status.UNREACHABLE):
        # Only a renewal replaces the certificate of a connected (or, while dockerd restarted with the new
        # one, unreachable) host: a plain re-enrolment makes the host pending first.
        forget_pooled_connections(host.id)  # dockerd restarted with the new certificate
        event_record(
            kind=kinds.CERT_RENEWED,
            actor=actor,
            instance_id=host.node_instance_id,
            host_id=host.id,
            data={
                "serial": host.server_cert_serial,
                "not_after": host.server_cert_not_after.isoformat() if host.server_cert_not_after else None,
                "revoked": replaced,
            },
        )
    if host.status == DockerHost.Status.CONNECTED:
        if host.version != version:
            old, host.version = host.version, version
            save_fields(host, "version")
            event_record(
                kind=kinds.HOST_VERSION_CHANGED,
                actor=actor,
                instance_id=host.node_instance_id,
                host_id=host.id,
                data={"from": old, "to": version},
            )
        return host
    if settings.POWERNODE_DOCKER_READY_PROBE:
        try:
            probe_host_daemon(host)
        except ApplicationError as exc:
            host.last_error = (
                f"ready was posted, but the platform could not reach the daemon at {host.api_endpoint} "
                f"over mTLS: {exc.message}"
            )[:MAX_ERROR_CHARS]
            save_fields(host, "last_error")
            event_record(
                kind=kinds.READY_PROBE_FAILED,
                actor=actor,
                instance_id=host.node_instance_id,
                host_id=host.id,
                data={"version": version, "status": host.status, "error": host.last_error},
            )
            return host
    previous = host.status
    forget_pooled_connections(host.id)  # connections from before this (re)start of dockerd are dead
    host.status = DockerHost.Status.CONNECTED
    host.version = version
    host.connected_at = timezone.now()
    host.last_error = ""
    save_fields(host, "status", "version", "connected_at", "last_error")
    event_record(
        kind=kinds.READY,
        actor=actor,
        instance_id=host.node_instance_id,
        host_id=host.id,
        data={"version": version, "from_status": previous},
    )
    if previous == DockerHost.Status.UNREACHABLE:
        event_record(
            kind=kinds.HOST_RECOVERED,
            actor=actor,
            instance_id=host.node_instance_id,
            host_id=host.id,
            data={"version": version},
        )
        return host
    event_record(
        kind=kinds.PROVISIONED,
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
        if host.status in (DockerHost.Status.PENDING, DockerHost.Status.CONNECTED, DockerHost.Status.UNREACHABLE):
            host.status = DockerHost.Status.FAILED
        host.failed_at = timezone.now()
        host.last_error = error
        save_fields(host, "status", "failed_at", "last_error")
    event_record(
        kind=kinds.FAILED,
        actor=actor,
        instance_id=ctx.instance.id,
        host_id=host.id if host else "",
        data={"error": error},
    )
    return host
