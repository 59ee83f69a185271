"""What every DockerHost write shares: the refusals of a host that is (being) decommissioned, and the
one-UPDATE save of a row the caller's transaction holds locked."""

from __future__ import annotations

from django.utils import timezone

from apps.docker_hosts import phases
from apps.docker_hosts.models import DockerHost
from powernode.errors import HandshakePhaseError, HostDecommissionedError


def refuse_decommissioning(host: DockerHost) -> None:
    if host.status == DockerHost.Status.DECOMMISSIONING:
        raise HandshakePhaseError(
            f"Host {host.id} is being decommissioned: stop dockerd, remove its key and certificate, then "
            f"post the phase '{phases.DECOMMISSIONED}'.",
            details={"host_id": host.id, "host_status": host.status, "expected_phase": phases.DECOMMISSIONED},
        )


def refuse_decommissioned(host: DockerHost) -> None:
    raise HostDecommissionedError(
        f"Host {host.id} is decommissioned; it takes no more handshake phases. To run Docker on this "
        "instance again, unassign and re-assign the docker-engine module.",
        details={"host_id": host.id, "host_status": host.status},
    )


def save_fields(host: DockerHost, *fields: str) -> None:
    """Write the named fields of a host whose row this transaction holds locked (one UPDATE)."""
    host.updated_at = timezone.now()
    values = {name: getattr(host, name) for name in (*fields, "updated_at")}
    DockerHost.objects.filter(pk=host.pk).update(**values)
