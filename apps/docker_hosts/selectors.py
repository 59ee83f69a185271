"""Reads of Docker hosts: lists for operators, the runtime orders a heartbeat carries, status counts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Count, QuerySet
from django.utils import timezone

from apps.docker_hosts.models import DockerHost
from apps.modules.models import Module, ModuleAssignment
from apps.pki.models import IssuedCertificate
from apps.pki.services import cert_renewal_due
from powernode import secretbox
from powernode.db import columns, text_datetime
from powernode.errors import NotFound

RUNTIME = Module.Runtime.DOCKER.value


def host_get(*, host_id: str) -> DockerHost:
    try:
        return DockerHost.objects.select_related("node_instance", "network").get(pk=host_id)
    except DockerHost.DoesNotExist:
        raise NotFound(f"No Docker host with id {host_id}.", details={"host_id": str(host_id)})


def host_list(*, status: str | None = None, network_id: str | None = None) -> QuerySet[DockerHost]:
    qs = DockerHost.objects.all()
    if status:
        qs = qs.filter(status=status)
    if network_id:
        qs = qs.filter(network_id=network_id)
    return qs.order_by("-created_at", "id")


def host_status_counts() -> dict[str, int]:
    """Hosts per status, every status present (zero when none)."""
    counts = {s.value: 0 for s in DockerHost.Status}
    for row in DockerHost.objects.values("status").annotate(n=Count("id")):
        counts[row["status"]] = row["n"]
    return counts


def latest_host_for_instance(*, instance_id: Any) -> DockerHost | None:
    """The instance's newest host: the live one if any (at most one), else the last decommissioned."""
    return DockerHost.objects.filter(node_instance_id=instance_id).order_by("-created_at").first()


def live_host_id(*, instance_id: Any) -> str | None:
    """The id of the instance's live (not decommissioned) host, or None."""
    return (
        DockerHost.objects.filter(node_instance_id=instance_id)
        .exclude(status=DockerHost.Status.DECOMMISSIONED)
        .order_by("-created_at")
        .values_list("id", flat=True)
        .first()
    )


def hosts_bound_to(*, instance_id: Any, overlay_address: str) -> list[dict[str, Any]]:
    """The instance's hosts that are not decommissioned and whose dockerd binds (endpoint, certificate SAN)
    to ``overlay_address``: an SDWAN peer with that /128 must not be detached under them."""
    rows = (
        DockerHost.objects.filter(node_instance_id=instance_id, overlay_address=overlay_address)
        .exclude(status=DockerHost.Status.DECOMMISSIONED)
        .order_by("created_at")
        .values_list("id", "status", "api_endpoint")
    )
    return [{"runtime": RUNTIME, "host_id": h, "status": s, "api_endpoint": e} for h, s, e in rows]


def docker_assignment_for_template(*, template_id: Any) -> ModuleAssignment | None:
    """The (newest) assignment of a docker-runtime module to the template, or None."""
    return (
        ModuleAssignment.objects.filter(node_template_id=template_id, module__runtime=Module.Runtime.DOCKER)
        .order_by("-created_at")
        .first()
    )


def provisioning_wanted(*, assigned_at: datetime | None, host: DockerHost | None) -> bool:
    """Whether the agent should run (or keep) the docker runtime, given when docker-engine was assigned.

    A decommissioned host ends the runtime for its assignment: only an assignment made after the
    decommission (unassign, then assign again) starts a new one. Without that rule an agent that just
    confirmed a decommission would be told to provision again on its next heartbeat.
    """
    if assigned_at is None:
        return False
    if host is None:
        return True
    if host.status == DockerHost.Status.DECOMMISSIONING:
        return False
    if host.status == DockerHost.Status.DECOMMISSIONED:
        return host.decommissioned_at is not None and assigned_at > host.decommissioned_at
    return True


def runtime_orders(
    *, host: DockerHost | None, assigned_at: datetime | None, renewal_in_flight: bool = False
) -> list[dict[str, Any]]:
    """The docker orders of a heartbeat answer (docs/AGENT_PROTOCOL.md), given the instance's newest host.

    ``assigned_at``: when docker-engine was (most recently) assigned to the instance's template, or None.
    ``renewal_in_flight``: the host has a server certificate that a ``wants_cert`` replaced and no ``ready``
    confirmed (still unrevoked): the agent may have crashed between the two, so the ``renew`` order is
    repeated until a ``ready`` with the new certificate revokes the old one.
    """
    if host is not None and host.status == DockerHost.Status.DECOMMISSIONING:
        return [{"runtime": RUNTIME, "action": "decommission", "host_id": host.id}]
    if provisioning_wanted(assigned_at=assigned_at, host=host):
        live = host is not None and host.status != DockerHost.Status.DECOMMISSIONED
        order: dict[str, Any] = {"runtime": RUNTIME, "action": "provision", "host_id": host.id if live else None}
        if not live or host.server_cert_not_after is None:
            return [order]
        order["cert_not_after"] = host.server_cert_not_after.isoformat()
        orders = [order]
        if host.status == DockerHost.Status.CONNECTED and (
            renewal_in_flight or cert_renewal_due(host.server_cert_not_after, timezone.now())
        ):
            # two thirds of the daemon's certificate's life are over (DESIGN §4 "Renewal"), or a renewal was
            # started and not confirmed
            orders.append({"runtime": RUNTIME, "action": "renew", "host_id": host.id})
        return orders
    return []


def latest_host_union_part() -> str:
    """This app's part of the heartbeat's one SELECT (apps.nodes.heartbeat): the instance's newest host.

    Nine text columns like the other parts: the runtime's name, sort key, then id, status, decommissioned_at,
    server_cert_not_after, and a server certificate of the host that was replaced and is not revoked yet
    (a renewal in flight; NULL when none).
    """
    meta, col = DockerHost._meta, columns(DockerHost)
    c_meta, c_col = IssuedCertificate._meta, columns(IssuedCertificate)
    replaced = (
        f"(SELECT MIN(c.{c_col['serial']}) FROM {c_meta.db_table} c WHERE c.{c_col['host_id']} = h.id "
        f"AND c.{c_col['kind']} = '{IssuedCertificate.Kind.SERVER.value}' AND c.{c_col['revoked_at']} IS NULL "
        f"AND c.{c_col['serial']} <> h.{col['server_cert_serial']})"
    )
    return (
        f"SELECT '{RUNTIME}', NULL, h.id, h.{col['status']}, CAST(h.{col['decommissioned_at']} AS TEXT), "
        f"CAST(h.{col['server_cert_not_after']} AS TEXT), {replaced}, NULL, NULL "
        f"FROM (SELECT * FROM {meta.db_table} WHERE {col['node_instance']} = %s "
        f"ORDER BY {col['created_at']} DESC LIMIT 1) AS h"
    )


def host_from_union_row(cols: tuple[Any, ...] | list[Any]) -> DockerHost:
    host_id, status, decommissioned_at, cert_not_after = cols[:4]
    return DockerHost(
        id=host_id,
        status=status,
        decommissioned_at=text_datetime(decommissioned_at),
        server_cert_not_after=text_datetime(cert_not_after),
    )


def host_client_tls(*, host: DockerHost) -> dict[str, str]:
    """The platform's client TLS material for a host, from the row (never a Vault round-trip)."""
    if not host.client_cert_pem or not host.client_key_encrypted:
        return {}
    return {
        "cert_pem": host.client_cert_pem,
        "key_pem": secretbox.decrypt(host.client_key_encrypted),
        "ca_pem": host.client_chain_pem,
    }
