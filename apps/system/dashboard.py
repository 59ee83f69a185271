"""Reads behind the operator pages in the admin: fleet summary, heartbeat age, a host's handshake timeline.

Selectors only: every change an admin page makes goes through ``run_action`` like the API does.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from apps.docker_hosts.models import DockerHost
from apps.docker_hosts.selectors import (
    docker_assignment_for_template,
    host_status_counts,
    latest_host_for_instance,
    provisioning_wanted,
)
from apps.events.models import Event
from apps.events.selectors import events_recent
from apps.nodes.models import NodeInstance

DOCKER = "system.docker"
# Statuses an operator waits on: the host page refreshes itself while the host is in one of them.
WAITING_STATUSES = (DockerHost.Status.PENDING, DockerHost.Status.DECOMMISSIONING)


def poll_interval_ms() -> int:
    return int(getattr(settings, "POWERNODE_ADMIN_POLL_MS", 3000))


def stale_after() -> dt.timedelta:
    """An agent is stale after 1.5 heartbeat intervals without a call (one late beat is not an outage)."""
    return dt.timedelta(seconds=1.5 * settings.POWERNODE_HEARTBEAT_INTERVAL_S)


def humanize_age(age: dt.timedelta | None) -> str:
    if age is None:
        return "never"
    seconds = max(int(age.total_seconds()), 0)
    if seconds < 90:
        return f"{seconds}s ago"
    if seconds < 90 * 60:
        return f"{seconds // 60} min ago"
    if seconds < 48 * 3600:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} days ago"


@dataclass(frozen=True)
class Heartbeat:
    """How fresh an instance's agent is: ``state`` is fresh, stale or never."""

    age: dt.timedelta | None
    state: str

    @property
    def label(self) -> str:
        return humanize_age(self.age)


def heartbeat_of(instance: NodeInstance, *, now: dt.datetime | None = None) -> Heartbeat:
    if instance.last_heartbeat_at is None:
        return Heartbeat(age=None, state="never")
    age = (now or timezone.now()) - instance.last_heartbeat_at
    return Heartbeat(age=age, state="stale" if age > stale_after() else "fresh")


# -- the admin index ---------------------------------------------------------------------------------


@dataclass
class InstanceRow:
    instance: NodeInstance
    heartbeat: Heartbeat
    host: DockerHost | None


@dataclass
class FleetSummary:
    hosts_by_status: list[tuple[str, str, int]]
    hosts_total: int
    instances_total: int
    instances_stale: int
    instances_never: int
    instances: list[InstanceRow]
    failed_hosts: list[DockerHost]
    failed_events: list[Event]
    latest_events: list[Event]
    instance_names: dict[str, str] = field(default_factory=dict)


def fleet_summary(*, instance_limit: int = 15, event_limit: int = 12) -> FleetSummary:
    """What the admin index shows: bounded queries whatever the fleet size (counts, then short lists)."""
    now = timezone.now()
    counts = host_status_counts()
    labels = dict(DockerHost.Status.choices)
    live = NodeInstance.objects.exclude(status=NodeInstance.Status.DELETED)
    threshold = now - stale_after()
    # Worst first: never seen, then the longest silent; fresh ones fill the rest of the table.
    worst = list(
        live.filter(Q(last_heartbeat_at__isnull=True) | Q(last_heartbeat_at__lt=threshold))
        .select_related("node_template")
        .order_by("last_heartbeat_at", "name")[:instance_limit]
    )
    if len(worst) < instance_limit:
        worst += list(
            live.filter(last_heartbeat_at__gte=threshold)
            .select_related("node_template")
            .order_by("-last_heartbeat_at", "name")[: instance_limit - len(worst)]
        )
    hosts = {
        h.node_instance_id: h
        for h in DockerHost.objects.filter(node_instance__in=[i.id for i in worst]).order_by("created_at")
    }  # newest host per instance wins
    failed_hosts = list(
        DockerHost.objects.filter(status=DockerHost.Status.FAILED)
        .select_related("node_instance")
        .order_by("-failed_at")[:8]
    )
    # failures of hosts listed above are not repeated; failures before any host (wants_cert) are kept
    shown = {h.id for h in failed_hosts}
    failed_events = [
        e for e in events_recent(kind_prefix=f"{DOCKER}.handshake.failed", limit=8) if e.host_id not in shown
    ]
    latest = events_recent(limit=event_limit)
    return FleetSummary(
        hosts_by_status=[(status, labels[status], n) for status, n in counts.items()],
        hosts_total=sum(counts.values()),
        instances_total=live.count(),
        instances_stale=live.filter(last_heartbeat_at__lt=threshold).count(),
        instances_never=live.filter(last_heartbeat_at__isnull=True).count(),
        instances=[InstanceRow(i, heartbeat_of(i, now=now), hosts.get(i.id)) for i in worst],
        failed_hosts=failed_hosts,
        failed_events=failed_events,
        latest_events=latest,
        instance_names=instance_names_for([*failed_events, *latest]),
    )


def instance_names_for(events: list[Event]) -> dict[str, str]:
    """instance id (text) → name for the events about to be shown: one query per page, not per row."""
    ids = {e.instance_id for e in events if e.instance_id}
    return {str(pk): name for pk, name in NodeInstance.objects.filter(pk__in=ids).values_list("id", "name")}


# -- a host's handshake timeline -----------------------------------------------------------------------


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
    for event in Event.objects.filter(host_id=host.id, kind__startswith=DOCKER).order_by(
        "-occurred_at", "-id"
    )[:300]:
        latest.setdefault(event.kind, event)
    if f"{DOCKER}.runtime.installing" not in latest:
        # "installing" comes before the host exists: the instance's last one before the host was made
        before = (
            Event.objects.filter(
                instance_id=host.node_instance_id,
                kind=f"{DOCKER}.runtime.installing",
                occurred_at__lte=host.created_at,
            )
            .order_by("-occurred_at", "-id")
            .first()
        )
        if before is not None:
            latest[before.kind] = before
    return latest


def host_timeline(host: DockerHost) -> list[Phase]:
    """The handshake as the operator follows it; ``at`` is when the phase was last reached."""
    events = _latest_by_kind(host)
    installing = events.get(f"{DOCKER}.runtime.installing")
    phases = [
        Phase(
            "installing",
            "Installing",
            "The agent started installing dockerd on the instance.",
            installing.occurred_at if installing else None,
            installing,
        ),
        Phase(
            "cert_signed",
            "Certificate signed (wants_cert)",
            "The internal CA signed the daemon's CSR for the overlay /128.",
            host.cert_signed_at,
            events.get(f"{DOCKER}.handshake.cert_signed"),
        ),
        Phase(
            "config_sent",
            "Daemon config sent (wants_config)",
            "The agent received daemon.json: listen on the overlay /128, port 2376, mutual TLS.",
            host.config_sent_at,
            events.get(f"{DOCKER}.handshake.wants_config"),
        ),
        Phase(
            "connected",
            "Ready — connected",
            "The agent reported dockerd up; the host accepts docker_* operations.",
            host.connected_at,
            events.get(f"{DOCKER}.handshake.ready"),
        ),
    ]
    if host.failed_at:
        phases.append(
            Phase(
                "failed",
                "Failed",
                "The agent reported an error (see the last error below).",
                host.failed_at,
                events.get(f"{DOCKER}.handshake.failed"),
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
                events.get(f"{DOCKER}.decommission.requested"),
            ),
            Phase(
                "decommissioned",
                "Decommissioned",
                "Every certificate issued for the host is revoked; it takes no more handshake phases.",
                host.decommissioned_at,
                events.get(f"{DOCKER}.decommissioned"),
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
    patience = dt.timedelta(seconds=2 * settings.POWERNODE_HEARTBEAT_INTERVAL_S)
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
