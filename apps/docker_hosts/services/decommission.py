"""Writes that end a DockerHost: the operator's request, the agent's confirmation, the instance's deletion.

Ending a host revokes every certificate ever issued for it and drops the platform's keypair (row and
Vault KV) in the same transaction as its status change.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from apps.docker_hosts import kinds
from apps.docker_hosts.models import DockerHost
from apps.docker_hosts.services.client_keypair import kv_path_for_host
from apps.docker_hosts.services.host_state import refuse_decommissioned, save_fields
from apps.events.services import event_record
from apps.nodes.models import NodeInstance
from apps.pki.kv import kv_destroy_after_commit
from apps.pki.services import ca_revoke_host_certificates
from powernode.actors import Actor
from powernode.errors import NotFound


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
        refuse_decommissioned(host)
    if host.status == DockerHost.Status.DECOMMISSIONING:
        return host
    _mark_decommissioning(host, actor=actor, by="operator")
    instance_status = (
        NodeInstance.objects.filter(pk=host.node_instance_id).values_list("status", flat=True).first()
    )
    if instance_status == NodeInstance.Status.DELETED:
        _finish_decommission(host, actor=actor, reason="instance deleted")
    return host


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
        refuse_decommissioned(host)
    if host.status != DockerHost.Status.DECOMMISSIONING:
        _mark_decommissioning(host, actor=actor, by="agent")
    _finish_decommission(host, actor=actor, reason="agent confirmed")
    return host


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


def _mark_decommissioning(host: DockerHost, *, actor: Actor, by: str) -> None:
    host.status = DockerHost.Status.DECOMMISSIONING
    host.decommission_requested_at = timezone.now()
    save_fields(host, "status", "decommission_requested_at")
    event_record(
        kind=kinds.DECOMMISSION_REQUESTED,
        actor=actor,
        instance_id=host.node_instance_id,
        host_id=host.id,
        data={"by": by},
    )


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
    save_fields(host, "status", "decommissioned_at", "client_cert_pem", "client_key_encrypted", "client_chain_pem")
    if had_keypair:
        # KV v2 keeps old versions: destroy them all, not only a newest "gone" version
        kv_destroy_after_commit(path=kv_path_for_host(host.id))
    event_record(
        kind=kinds.DECOMMISSIONED,
        actor=actor,
        instance_id=host.node_instance_id,
        host_id=host.id,
        data={"reason": reason, "revoked_serials": revoked},
    )
