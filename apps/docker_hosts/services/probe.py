"""The platform's own check of a host's daemon (DESIGN §4 "Probe"): connect over mTLS (through the overlay
and the hub), read the engine version, close.

``probe_host_daemon`` is the one network call: ``ready`` uses it before promoting, the periodic round uses it
to move a connected host to ``unreachable`` and back. A round probes every connected or unreachable host once
(one fresh connection per host, at most POWERNODE_DOCKER_PROBE_CONCURRENCY at a time, short timeouts), then
writes the transitions in the calling thread, one short transaction per changed host.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.docker_hosts import kinds
from apps.docker_hosts.adapters.engine import DockerEngine, forget_engine
from apps.docker_hosts.models import DockerHost
from apps.docker_hosts.selectors import host_client_tls
from apps.docker_hosts.services.client_keypair import client_keypair_renew_due
from apps.docker_hosts.services.host_state import save_fields
from apps.events.services import event_record
from apps.pki.models import IssuedCertificate
from apps.pki.services import ca_revoke_replaced_certificates, unrevoked_replaced_certificates
from powernode.actors import Actor
from powernode.db import advisory_lock
from powernode.errors import ApplicationError, DockerDaemonError

log = logging.getLogger(__name__)

PROBE_ACTOR = Actor(label="docker_probe")
#: pg_try_advisory_lock key: one probing process at a time across the platform's processes
ADVISORY_LOCK_KEY = 0x706E_646F_636B  # "pndock"
MAX_ERROR_CHARS = 2000


def probe_host_daemon(host: DockerHost) -> str:
    """The daemon's engine version, read by the platform over mTLS with the host's client keypair.

    Raises ``DockerDaemonError`` (or another ``ApplicationError``) when the daemon does not answer in
    POWERNODE_DOCKER_PROBE_TIMEOUT_S, refuses TLS, or the host has no client keypair.
    """
    tls = host_client_tls(host=host)
    if not tls:
        raise DockerDaemonError(
            f"host {host.id} has no platform client certificate: the platform cannot probe its daemon",
            details={"host_id": host.id},
        )
    timeout = float(settings.POWERNODE_DOCKER_PROBE_TIMEOUT_S)
    with DockerEngine(endpoint=host.api_endpoint, connect_timeout=timeout, read_timeout=timeout, **tls) as engine:
        version = engine.version().get("version")
    return str(version or "")


@dataclass(frozen=True)
class ProbeResult:
    host_id: str
    probed_status: str
    ok: bool
    detail: str  # the version when ok, else the error
    client_serial: str = ""  # the platform client certificate the probe connected with


def _attempt(host: DockerHost, probe: Callable[[DockerHost], str]) -> ProbeResult:
    try:
        return ProbeResult(host.id, host.status, True, probe(host), host.client_cert_serial)
    except ApplicationError as exc:
        return ProbeResult(host.id, host.status, False, exc.message[:MAX_ERROR_CHARS], host.client_cert_serial)
    except Exception as exc:  # a probe must never take the round down
        log.exception("docker probe of %s crashed", host.id)
        return ProbeResult(
            host.id, host.status, False, f"probe crashed: {exc}"[:MAX_ERROR_CHARS], host.client_cert_serial
        )


def renewal_restart_in_progress(host: DockerHost) -> bool:
    """A renewal is between the platform's signature and the agent's ``ready`` (a replaced server certificate
    is still unrevoked), and was signed less than POWERNODE_DOCKER_RENEWAL_GRACE_S ago."""
    grace = settings.POWERNODE_DOCKER_RENEWAL_GRACE_S
    if not grace or host.cert_signed_at is None:
        return False
    if (timezone.now() - host.cert_signed_at).total_seconds() > grace:
        return False
    return (
        IssuedCertificate.objects.filter(
            host_id=host.id, kind=IssuedCertificate.Kind.SERVER, revoked_at__isnull=True
        )
        .exclude(serial=host.server_cert_serial)
        .exists()
    )


@transaction.atomic
def docker_host_probe_result(result: ProbeResult, *, actor: Actor = PROBE_ACTOR) -> str | None:
    """Apply one probe result: connected + no answer → unreachable; unreachable + answer → connected.

    Returns the new status, or None when nothing changed (also when the host moved on since it was
    probed: decommissioning, re-enrolling).
    """
    host = DockerHost.objects.select_for_update().filter(pk=result.host_id).first()
    if host is None or host.status != result.probed_status:
        return None
    if host.status == DockerHost.Status.CONNECTED and not result.ok:
        if renewal_restart_in_progress(host):
            # The agent asked for a renewed certificate and is restarting dockerd with it (live-restore: the
            # containers run on); docker_* calls wait out the refused connections. Unreachable only if the
            # restart takes longer than the grace.
            log.info("docker probe: host %s did not answer during its renewal restart: %s", host.id, result.detail)
            return None
        host.status = DockerHost.Status.UNREACHABLE
        host.last_error = result.detail
        host.failed_at = timezone.now()
        save_fields(host, "status", "last_error", "failed_at")
        forget_pooled_connections(host.id)
        event_record(
            kind=kinds.HOST_UNREACHABLE,
            actor=actor,
            instance_id=host.node_instance_id,
            host_id=host.id,
            data={"error": result.detail},
        )
        return host.status
    if host.status == DockerHost.Status.UNREACHABLE and result.ok:
        host.status = DockerHost.Status.CONNECTED
        host.last_error = ""
        save_fields(host, "status", "last_error")
        forget_pooled_connections(host.id)
        event_record(
            kind=kinds.HOST_RECOVERED,
            actor=actor,
            instance_id=host.node_instance_id,
            host_id=host.id,
            data={"version": result.detail},
        )
        return host.status
    return None


def revoke_replaced_client_certificates(results: list[ProbeResult], *, actor: Actor = PROBE_ACTOR) -> list[str]:
    """Revoke the platform client certificates that a renewal replaced, once the new keypair is in use: the
    probe reached the daemon with it. One query finds them for the whole round (usually none); each host is
    then rechecked under its row lock (its keypair must still be the one the probe used). Returns the serials.
    """
    proven = {r.host_id: r.client_serial for r in results if r.ok and r.client_serial}
    replaced = unrevoked_replaced_certificates(kind=IssuedCertificate.Kind.PLATFORM_CLIENT, current=proven)
    revoked: list[str] = []
    for host_id in replaced:
        with transaction.atomic():
            host = DockerHost.objects.select_for_update().filter(pk=host_id).only("client_cert_serial").first()
            if host is None or host.client_cert_serial != proven[host_id]:
                continue  # renewed again since the probe: the next round decides
            revoked += ca_revoke_replaced_certificates(
                host_id=host_id,
                kind=IssuedCertificate.Kind.PLATFORM_CLIENT,
                current_serial=host.client_cert_serial,
                reason="replaced by a renewed platform client keypair",
                actor=actor,
            )
    return revoked


def forget_pooled_connections(host_id: str) -> None:
    """After commit, drop the host's cached engine: its pooled keep-alive connections went to a daemon that
    stopped (or restarted), and the first call through them would fail with "connection aborted"."""
    transaction.on_commit(lambda: forget_engine(host_id))


def docker_probe_round(
    *, probe: Callable[[DockerHost], str] = probe_host_daemon, concurrency: int | None = None
) -> dict[str, int]:
    """Renew the platform's client keypairs at two thirds of their life, then probe every connected or
    unreachable host once (with its current keypair) and write the transitions; revoke the client keypairs
    that a renewal replaced on the hosts that answered to the new one. Returns counts."""
    renewed = client_keypair_renew_due(actor=PROBE_ACTOR)
    hosts = list(
        DockerHost.objects.filter(status__in=(DockerHost.Status.CONNECTED, DockerHost.Status.UNREACHABLE)).only(
            "id", "status", "api_endpoint", "node_instance_id", "client_cert_serial", "client_cert_pem",
            "client_key_encrypted", "client_chain_pem",
        )
    )
    counts = {"probed": len(hosts), "answered": 0, "unreachable": 0, "recovered": 0, "client_renewed": len(renewed),
              "client_revoked": 0}
    if not hosts:
        return counts
    workers = max(1, min(concurrency or settings.POWERNODE_DOCKER_PROBE_CONCURRENCY, len(hosts)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="docker-probe") as pool:
        results = list(pool.map(lambda h: _attempt(h, probe), hosts))
    for result in results:
        counts["answered"] += result.ok
        changed = docker_host_probe_result(result)
        if changed == DockerHost.Status.UNREACHABLE:
            counts["unreachable"] += 1
            log.warning("docker probe: host %s unreachable: %s", result.host_id, result.detail)
        elif changed == DockerHost.Status.CONNECTED:
            counts["recovered"] += 1
            log.warning("docker probe: host %s recovered (engine %s)", result.host_id, result.detail)
    counts["client_revoked"] = len(revoke_replaced_client_certificates(results))
    return counts


def probe_lock() -> contextlib.AbstractContextManager[bool]:
    """Whether this process may probe now: on PostgreSQL a session advisory lock (one prober across every
    platform process); elsewhere (SQLite: one process) always."""
    return advisory_lock(ADVISORY_LOCK_KEY)


def docker_probe_locked_round(**kwargs) -> dict[str, int] | None:  # noqa: ANN003 - docker_probe_round's
    """One round under the advisory lock; None when another process holds it."""
    with probe_lock() as acquired:
        if not acquired:
            return None
        return docker_probe_round(**kwargs)
