"""The platform's own client mTLS keypair for a host: issued at ``wants_cert`` (and renewed near expiry),
mirrored on the DockerHost row with the key encrypted, and written to Vault KV after commit (DESIGN §5)."""

from __future__ import annotations

import datetime as dt

from apps.docker_hosts.models import DockerHost
from apps.pki.kv import kv_write_after_commit
from apps.pki.models import IssuedCertificate
from apps.pki.services import ca_issue_client_keypair
from powernode import secretbox
from powernode.actors import Actor

# The platform's client keypair is renewed at a re-handshake when it expires sooner than this.
CLIENT_RENEW_BEFORE = dt.timedelta(days=7)
#: the row fields :func:`client_keypair_issue` sets (the caller writes them with the rest of its change)
CLIENT_KEYPAIR_FIELDS = (
    "client_cert_serial",
    "client_cert_pem",
    "client_key_encrypted",
    "client_chain_pem",
    "client_cert_not_after",
)


def kv_path_for_host(host_id: str) -> str:
    """Where the keypair of ``host_id`` lives in Vault KV (under VAULT_KV_MOUNT)."""
    return f"powernode/hosts/{host_id}/platform-client"


def client_keypair_needs_issuing(host: DockerHost, now: dt.datetime) -> bool:
    if not host.client_cert_pem or host.client_cert_not_after is None:
        return True
    return host.client_cert_not_after - now < CLIENT_RENEW_BEFORE


def client_keypair_issue(*, host: DockerHost, actor: Actor) -> None:
    """Issue the keypair (CN ``platform:<host id>``) onto ``host`` (not saved) and queue its Vault KV copy.

    Runs inside the caller's transaction: the KV write is recorded there and sent after commit; a failed
    send stays in the outbox for ``vault_sync``. Without Vault configured it is recorded as skipped.
    """
    issued = ca_issue_client_keypair(
        kind=IssuedCertificate.Kind.PLATFORM_CLIENT,
        common_name=f"platform:{host.id}",
        host_id=host.id,
        actor=actor,
    )
    host.client_cert_serial = issued.certificate.serial
    host.client_cert_pem = issued.cert_pem
    host.client_key_encrypted = secretbox.encrypt(issued.key_pem)
    host.client_chain_pem = issued.chain_pem
    host.client_cert_not_after = issued.certificate.not_after
    kv_write_after_commit(
        path=kv_path_for_host(host.id),
        data={
            "host_id": host.id,
            "serial": issued.certificate.serial,
            "cert_pem": issued.cert_pem,
            "key_pem": issued.key_pem,
            "chain_pem": issued.chain_pem,
        },
    )
