"""A Docker host as the operator follows it: its handshake timeline, what to check when it waits, its state.

Reads only (the host page, the instance page and the fleet overview show them). The phases come from
the kind constants of ``apps.docker_hosts.kinds``, in ``PROVISIONING_SEQUENCE`` order.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.utils import timezone

from apps.docker_hosts import kinds
from apps.docker_hosts.models import DockerHost
from apps.docker_hosts.selectors import (
    docker_assignment_for_template,
    latest_host_for_instance,
    provisioning_wanted,
)
from apps.events.models import Event
from apps.nodes.models import NodeInstance
from apps.nodes.selectors import heartbeat_interval_s

# Statuses an operator waits on: the host page refreshes itself while the host is in one of them.
WAITING_STATUSES = (DockerHost.Status.PENDING, DockerHost.Status.DECOMMISSIONING)


def poll_interval_ms() -> int:
    return int(getattr(settings, "POWERNODE_ADMIN_POLL_MS", 3000))


@dataclass
class Phase:
    key: str
    title: str
    explains: str
    at: dt.datetime | None
    event: Event | None
    state: str = "todo"  # done, current, failed, todo


def _latest_by_kind(host: DockerHost) -> dict[str, Event]:
    latest: dict[str, Event] = {}
    for event in Event.objects.filter(host_id=host.id, kind__startswith=kinds.PREFIX).order_by(
        "-occurred_at", "-id"
    )[:300]:
        latest.setdefault(event.kind, event)
    if kinds.INSTALLING not in latest:
        # "installing" comes before the host exists: the instance's last one before the host was made
        before = (
            Event.objects.filter(
                instance_id=host.node_instance_id,
                kind=kinds.INSTALLING,
                occurred_at__lte=host.created_at,
            )
            .order_by("-occurred_at", "-id")
            .first()
        )
        if before is not None:
            latest[before.kind] = before
    return latest


#: the provisioning kinds the timeline shows a phase for: kind → (key, title, explains, the host's time field)
#: (``installing`` has no field: it happens before the host row exists, its time is its event's)
_PROVISIONING_PHASES = {
    kinds.INSTALLING: ("installing", "Installing", "The agent started installing dockerd on the instance.", None),
    kinds.CERT_SIGNED: (
        "cert_signed",
        "Certificate signed (wants_cert)",
        "The internal CA signed the daemon's CSR for the overlay /128.",
        "cert_signed_at",
    ),
    kinds.WANTS_CONFIG: (
        "config_sent",
        "Daemon config sent (wants_config)",
        "The agent received daemon.json: listen on the overlay /128, port 2376, mutual TLS.",
        "config_sent_at",
    ),
    kinds.READY: (
        "connected",
        "Ready — connected",
        "The agent reported dockerd up; the host accepts docker_* operations.",
        "connected_at",
    ),
}


def host_timeline(host: DockerHost) -> list[Phase]:
    """The handshake as the operator follows it; ``at`` is when the phase was last reached."""
    events = _latest_by_kind(host)
    phases = []
    for kind in kinds.PROVISIONING_SEQUENCE:  # the order the platform records them in
        if kind not in _PROVISIONING_PHASES:
            continue
        key, title, explains, field = _PROVISIONING_PHASES[kind]
        event = events.get(kind)
        at = getattr(host, field) if field else (event.occurred_at if event else None)
        phases.append(Phase(key, title, explains, at, event))
    if host.failed_at:
        phases.append(
            Phase(
                "failed",
                "Failed",
                "The agent reported an error (see the last error below).",
                host.failed_at,
                events.get(kinds.FAILED),
            )
        )
    if host.decommission_requested_at or host.status in (
        DockerHost.Status.DECOMMISSIONING,
        DockerHost.Status.DECOMMISSIONED,
    ):
        phases += [
            Phase(
                "decommission_requested",
                "Decommission requested",
                "The next heartbeat orders the agent to stop dockerd and remove its key and certificate.",
                host.decommission_requested_at,
                events.get(kinds.DECOMMISSION_REQUESTED),
            ),
            Phase(
                "decommissioned",
                "Decommissioned",
                "Every certificate issued for the host is revoked; it takes no more handshake phases.",
                host.decommissioned_at,
                events.get(kinds.DECOMMISSIONED),
            ),
        ]
    for phase in phases:
        if phase.at is not None:
            phase.state = "failed" if phase.key == "failed" else "done"
    if host.status in WAITING_STATUSES:
        waiting = next((p for p in phases if p.at is None and p.key != "failed"), None)
        if waiting is not None:
            waiting.state = "current"
    return phases


@dataclass(frozen=True)
class Hint:
    title: str
    stuck: bool
    since: dt.datetime | None
    steps: list[str]


def troubleshooting_hint(host: DockerHost, *, now: dt.datetime | None = None) -> Hint | None:
    """What to check for a host waiting in (or failed at) a phase — the tutorial's troubleshooting, rephrased.

    ``stuck`` is set when the host has waited longer than two heartbeat intervals: the agent acts on
    every heartbeat, so one interval without progress can still be normal.
    """
    now = now or timezone.now()
    patience = dt.timedelta(seconds=2 * heartbeat_interval_s())
    status = host.status
    if status == DockerHost.Status.PENDING:
        if not host.config_sent_at or (host.cert_signed_at and host.config_sent_at < host.cert_signed_at):
            since = host.cert_signed_at or host.created_at
            return Hint(
                "Waiting for the agent to ask for its daemon config (wants_config)",
                now - since > patience,
                since,
                [
                    "The agent has its certificate but has not fetched daemon.json. Most often it cannot "
                    "write under /etc/docker on the instance (missing directory, or owned by another user).",
                    "On the instance: journalctl -u powernode-agent.service — look for permission errors.",
                    "Check the instance's heartbeat age on its page: an agent that stopped calling in "
                    "cannot progress.",
                ],
            )
        since = host.config_sent_at
        if host.last_error.startswith("ready was posted"):
            return Hint(
                "The agent reported ready, but the platform cannot reach the daemon",
                True,
                since,
                [
                    "Before promoting a host the platform connects to its daemon itself, over mutual TLS "
                    f"through the SDWAN hub to {host.api_endpoint}, and reads its version. That failed: see "
                    "the last error below. The agent posts ready again on its next heartbeat.",
                    "Connection refused or timed out: is the instance's tunnel up (its peer's handshake on the "
                    "network page) and does dockerd listen there (ss -tlnp | grep dockerd on the instance)?",
                    "A TLS error: the daemon must use the certificate and client CA from this handshake "
                    "(journalctl -u docker.service; /etc/docker/daemon.json tlscacert/tlscert/tlskey).",
                ],
            )
        return Hint(
            "Waiting for the daemon to report ready",
            now - since > patience,
            since,
            [
                "dockerd was configured but the agent has not reported it up. Three usual causes:",
                "It listens on the wrong address: ss -tlnp | grep dockerd on the instance must show "
                f"[{host.overlay_address}]:2376 — never 0.0.0.0:2376.",
                "Mutual TLS is misconfigured: the daemon refuses clients without a certificate, so its own "
                "log says why — journalctl -u docker.service.",
                "daemon.json does not parse: validate the JSON (dockerd --validate exists only from Engine "
                "23; on 20.10 use python3 -m json.tool /etc/docker/daemon.json).",
            ],
        )
    if status == DockerHost.Status.FAILED:
        return _failed_hint(host)
    if status == DockerHost.Status.UNREACHABLE:
        return Hint(
            "The platform's probe gets no answer from the daemon",
            True,
            host.failed_at,
            [
                "The host was connected; the periodic probe (every POWERNODE_DOCKER_PROBE_INTERVAL_S) could not "
                "read the daemon's version over mutual TLS since then. docker_* calls answer "
                "HostNotConnectedError until it answers again, then the host is connected by itself.",
                "On the instance: is dockerd running (journalctl -u docker.service, or the agent's dockerd.log)? "
                "The agent restarts a dockerd that died on its next heartbeat.",
                "Check the instance's heartbeat age and its tunnel on the network page: the platform reaches "
                "the daemon through the SDWAN hub.",
            ],
        )
    if status == DockerHost.Status.DECOMMISSIONING:
        since = host.decommission_requested_at
        return Hint(
            "Waiting for the agent to confirm the decommission",
            bool(since and now - since > patience),
            since,
            [
                "The order travels with the instance's next heartbeat; the agent stops dockerd, removes the "
                "key and certificate, then confirms.",
                "If the instance's agent is stale (see its heartbeat age), the host stays here until the "
                "agent "
                "calls in again — or until the instance is deleted, which finishes the decommission at once.",
            ],
        )
    return None


def _failed_hint(host: DockerHost) -> Hint:
    """The checks that match the last phase the host reached before the agent reported the failure."""
    steps = ["Read the last error below; the agent retries from the phase it failed in."]
    if host.config_sent_at:
        title = "The agent failed after receiving the daemon config"
        steps += [
            "dockerd did not come up on the overlay. On the instance: journalctl -u docker.service, and "
            f"ss -tlnp | grep dockerd must show [{host.overlay_address}]:2376 (never 0.0.0.0).",
            "A permission error on /etc/docker/powernode/*.pem or daemon.json: the directory must exist and "
            "belong to root (journalctl -u powernode-agent.service).",
        ]
    elif host.cert_signed_at:
        title = "The agent failed after getting its certificate"
        steps += [
            "It could not write the certificate or fetch daemon.json: check /etc/docker on the instance "
            "(missing, or owned by another user) and journalctl -u powernode-agent.service.",
        ]
    else:
        title = "The agent failed before a certificate was signed"
        steps += [
            "The internal CA did not sign: platform_provisioning_status names the adapter (LocalCaAdapter or "
            "VaultCaAdapter); with Vault, the pki_int mount must answer and the node role must exist.",
        ]
    return Hint(title, True, host.failed_at, steps)


def host_state(host: DockerHost) -> dict[str, Any]:
    """The small JSON the host page polls: it reloads itself when ``signature`` changes."""
    return {
        "id": host.id,
        "status": host.status,
        "status_label": host.get_status_display(),
        "version": host.version,
        "signature": f"{host.status}|{host.updated_at.isoformat()}",
        "refresh": host.status in WAITING_STATUSES,
    }


def pre_host_hint(instance: NodeInstance) -> Hint | None:
    """For an instance that should be getting a Docker host and has none yet: the wants_cert hint.

    Nothing when docker-engine is not assigned, when a live host exists, or when the last host was
    decommissioned under the current assignment (the runtime ended; the agent is not asked again).
    """
    assignment = docker_assignment_for_template(template_id=instance.node_template_id)
    if assignment is None:
        return None
    latest = latest_host_for_instance(instance_id=instance.id)
    if latest is not None and latest.status != DockerHost.Status.DECOMMISSIONED:
        return None
    if not provisioning_wanted(assigned_at=assignment.created_at, host=latest):
        return None
    return Hint(
        "Docker is assigned but no certificate was issued yet (wants_cert)",
        False,
        None,
        [
            "The agent asks for a certificate on its next heartbeat after the assignment. If it stays here, "
            "the internal CA is probably failing: platform_provisioning_status names the active adapter "
            "(LocalCaAdapter in development is expected); with VaultCaAdapter check that pki_int answers "
            "and the node role exists.",
            "The instance needs an SDWAN peer: the daemon binds only to its overlay /128.",
        ],
    )
