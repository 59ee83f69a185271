"""Event kinds of the managed Docker runtime, and the provisioning sequence (DESIGN §3), defined once.

The smoke test, the lab, the tests and the admin's quick filters all take the sequence from here.
"""

from powernode.event_kinds import declare

PREFIX = "system.docker"

MODULE_ASSIGNED = declare(f"{PREFIX}.module.assigned", "docker-engine was assigned to a node template.")
MODULE_UNASSIGNED = declare(f"{PREFIX}.module.unassigned", "docker-engine was unassigned (running hosts stay).")
INSTALLING = declare(f"{PREFIX}.runtime.installing", "The agent is installing dockerd.")
WANTS_CERT = declare(f"{PREFIX}.handshake.wants_cert", "The agent posted its CSR.")
CERT_SIGNED = declare(f"{PREFIX}.handshake.cert_signed", "The CA signed the host's server certificate.")
WANTS_CONFIG = declare(f"{PREFIX}.handshake.wants_config", "The platform sent daemon.json.")
READY = declare(f"{PREFIX}.handshake.ready", "The agent reported dockerd running.")
PROVISIONED = declare(f"{PREFIX}.provisioned", "The host is connected: operators can drive it.")
FAILED = declare(f"{PREFIX}.handshake.failed", "The agent reported a failure (the error is in data).")
DECOMMISSION_REQUESTED = declare(f"{PREFIX}.decommission.requested", "An operator asked to decommission the host.")
DECOMMISSIONED = declare(f"{PREFIX}.decommissioned", "The host is gone; every certificate it had is revoked.")
HOST_UNREACHABLE = declare(f"{PREFIX}.host.unreachable", "The platform's probe got no answer from the daemon.")
HOST_RECOVERED = declare(f"{PREFIX}.host.recovered", "An unreachable host's daemon answered again: connected.")
READY_PROBE_FAILED = declare(
    f"{PREFIX}.handshake.probe_failed", "ready was posted but the platform could not reach the daemon."
)
CERT_RENEWED = declare(f"{PREFIX}.cert.renewed", "The host's renewed certificate is in use; the old serial is revoked.")
HOST_VERSION_CHANGED = declare(f"{PREFIX}.host.version_changed", "dockerd reported a different version.")
IMAGE_PULLED = declare(f"{PREFIX}.image.pulled", "An operator pulled an image onto the host.")
IMAGE_DELETED = declare(f"{PREFIX}.image.deleted", "An operator deleted an image from the host.")
CONTAINER_CREATED = declare(f"{PREFIX}.container.created", "An operator created a container.")
CONTAINER_DELETED = declare(f"{PREFIX}.container.deleted", "An operator deleted a container.")
CONTAINER_STARTED = declare(f"{PREFIX}.container.started", "An operator started a container.")
CONTAINER_STOPPED = declare(f"{PREFIX}.container.stopped", "An operator stopped a container.")
CONTAINER_RESTARTED = declare(f"{PREFIX}.container.restarted", "An operator restarted a container.")
REGISTRY_CREDENTIALS_SET = declare(
    f"{PREFIX}.registry.credentials_set", "An operator stored a registry login (the password is never in events)."
)
OPERATOR_CERT_EXPORTED = declare("system.pki.operator_cert.exported", "An operator exported a Docker CLI client cert.")

#: what a successful provisioning writes, in order (DESIGN §3)
PROVISIONING_SEQUENCE = (
    MODULE_ASSIGNED,
    INSTALLING,
    WANTS_CERT,
    CERT_SIGNED,
    WANTS_CONFIG,
    READY,
    PROVISIONED,
)

#: what decommissioning a provisioned host writes after it, in order (DESIGN §3)
DECOMMISSION_SEQUENCE = (
    DECOMMISSION_REQUESTED,
    DECOMMISSIONED,
)

#: prefixes operators filter the event log by most (the admin's quick filters)
QUICK_PREFIXES = (
    f"{PREFIX}.handshake",
    FAILED,
    f"{PREFIX}.decommission",
    f"{PREFIX}.module",
)
