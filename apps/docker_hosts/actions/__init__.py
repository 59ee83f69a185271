"""The docker_hosts app's operator actions; importing this package registers every one of them.

``hosts``: list and decommission hosts. ``operations``: ``docker_*`` on a connected host's dockerd,
and the operator's Docker CLI certificate.
"""

from apps.docker_hosts.actions import hosts, operations

__all__ = ["hosts", "operations"]
