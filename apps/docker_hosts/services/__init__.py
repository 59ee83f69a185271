"""Writes of the DockerHost lifecycle and of operations on a host's dockerd, one module per job.

``handshake`` (the agent's phases, promotion), ``client_keypair`` (the platform's mTLS keypair and its
Vault KV copy), ``decommission`` (operator request, agent confirmation, instance deletion),
``assignment`` (the precondition for assigning docker-engine), ``operations`` (``docker_*`` on a
connected host) and ``operator_cert`` (a Docker CLI certificate). The public names are re-exported here.
"""

from apps.docker_hosts.services.assignment import docker_assignment_check
from apps.docker_hosts.services.client_keypair import kv_path_for_host
from apps.docker_hosts.services.decommission import (
    docker_host_request_decommission,
    docker_hosts_end_for_instance,
    docker_runtime_decommissioned,
)
from apps.docker_hosts.services.handshake import (
    HostCertificate,
    daemon_config,
    docker_host_config_sent,
    docker_host_issue_certificate,
    docker_host_mark_ready,
    docker_runtime_failed,
    docker_runtime_installing,
    docker_runtime_ready,
    system_mark_docker_ready,
)
from apps.docker_hosts.services.operations import (
    docker_container_create,
    docker_container_delete,
    docker_container_list,
    docker_image_delete,
    docker_image_pull,
)
from apps.docker_hosts.services.operator_cert import operator_cert_export

__all__ = [
    "HostCertificate",
    "daemon_config",
    "docker_assignment_check",
    "docker_container_create",
    "docker_container_delete",
    "docker_container_list",
    "docker_host_config_sent",
    "docker_host_issue_certificate",
    "docker_host_mark_ready",
    "docker_host_request_decommission",
    "docker_hosts_end_for_instance",
    "docker_image_delete",
    "docker_image_pull",
    "docker_runtime_decommissioned",
    "docker_runtime_failed",
    "docker_runtime_installing",
    "docker_runtime_ready",
    "kv_path_for_host",
    "operator_cert_export",
    "system_mark_docker_ready",
]
