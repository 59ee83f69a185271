"""The platform's own client mTLS keypair for a host: issued by the host's network's client CA at ``wants_cert``
(renewed at two thirds of its life), mirrored on the DockerHost row with the key encrypted, and written to Vault KV
after commit (DESIGN §5). On the row, ``client_cert_pem`` is the leaf then its client CA (what the platform presents)
and ``client_chain_pem`` the chain that verifies the daemon's server certificate."""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from django.db import transaction
from django.utils import timezone

from apps.docker_hosts.models import DockerHost
from apps.docker_hosts.services.host_state import save_fields
from apps.pki.kv import kv_write_after_commit
from apps.pki.models import IssuedCertificate
from apps.pki.services import ca_issue_client_keypair, cert_renewal_due
from powernode import secretbox
from powernode.actors import Actor

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


def client_keypair_needs_issuing(host: DockerHost, now: dt.datetime, *, client_ca_pem: str = "") -> bool:
    """No keypair yet, one near expiry, or (given the network's ``client_ca_pem``) one that CA did not issue:
    a keypair from before the per-network client CAs, which the host's daemon no longer accepts."""
    if not host.client_cert_pem or host.client_cert_not_after is None:
        return True
    if cert_renewal_due(host.client_cert_not_after, now):
        return True
    return bool(client_ca_pem) and not _issued_by(host.client_cert_pem, client_ca_pem)


def _issued_by(cert_pem: str, ca_pem: str) -> bool:
    try:
        x509.load_pem_x509_certificate(cert_pem.encode()).verify_directly_issued_by(
            x509.load_pem_x509_certificate(ca_pem.encode())
        )
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def client_keypair_issue(*, host: DockerHost, actor: Actor) -> None:
    """Issue the keypair (CN ``platform:<host id>``, from the client CA of ``host.network_id``) onto ``host``
    (not saved) and queue its Vault KV copy.

    Runs inside the caller's transaction: the KV write is recorded there and sent after commit; a failed
    send stays in the outbox for ``vault_sync``. Without Vault configured it is recorded as skipped.
    """
    issued = ca_issue_client_keypair(
        kind=IssuedCertificate.Kind.PLATFORM_CLIENT,
        common_name=f"platform:{host.id}",
        network_id=str(host.network_id),
        host_id=host.id,
        actor=actor,
    )
    host.client_cert_serial = issued.certificate.serial
    host.client_cert_pem = issued.presented_pem
    host.client_key_encrypted = secretbox.encrypt(issued.key_pem)
    host.client_chain_pem = issued.server_ca_pem
    host.client_cert_not_after = issued.certificate.not_after
    kv_write_after_commit(
        path=kv_path_for_host(host.id),
        data={
            "host_id": host.id,
            "serial": issued.certificate.serial,
            "network_id": str(host.network_id),
            "cert_pem": host.client_cert_pem,
            "key_pem": issued.key_pem,
            "chain_pem": host.client_chain_pem,
            "client_ca_pem": issued.client_ca_pem,
        },
    )


def client_keypair_renew_due(*, actor: Actor, now: dt.datetime | None = None) -> list[str]:
    """Renew the platform's client keypair of every connected or unreachable host at two thirds of its life
    (the periodic probe calls this each round), one transaction per host. Returns the renewed host ids."""
    now = now or timezone.now()
    renewed = []
    live = (DockerHost.Status.CONNECTED, DockerHost.Status.UNREACHABLE)
    for host_id, not_after in DockerHost.objects.filter(status__in=live).values_list("id", "client_cert_not_after"):
        if not cert_renewal_due(not_after, now):
            continue
        with transaction.atomic():
            host = DockerHost.objects.select_for_update().filter(pk=host_id, status__in=live).first()
            if host is None or not cert_renewal_due(host.client_cert_not_after, now):
                continue
            client_keypair_issue(host=host, actor=actor)
            save_fields(host, *CLIENT_KEYPAIR_FIELDS)
        renewed.append(host_id)
    return renewed
