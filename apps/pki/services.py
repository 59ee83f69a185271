"""InternalCaService: sign host CSRs, issue client keypairs, revoke, publish and report — through one adapter.

The adapter is ``VaultCaAdapter`` when settings VAULT_ADDR and a credential (VAULT_TOKEN, or the AppRole's
VAULT_ROLE_ID + VAULT_SECRET_ID: apps.pki.kv.get_vault_auth) are set, else
``LocalCaAdapter`` on settings PKI_LOCAL_CA_DIR. The CA is called before any row is written, so a CA
failure (``CaUnavailableError``, 502) leaves nothing behind; callers that wrap these calls in their own
``transaction.atomic`` (the handshake) roll back their rows with it.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.events.services import event_record
from apps.pki import kinds
from apps.pki.adapters.base import CaAdapter, CaStatus, IssuedKeypair, SignedCertificate, canonical_serial
from apps.pki.adapters.local import LocalCaAdapter
from apps.pki.adapters.vault import VaultCaAdapter
from apps.pki.kv import get_vault_auth, kv_configured
from apps.pki.models import IssuedCertificate, VaultKvOutbox
from powernode import metrics
from powernode.actors import Actor
from powernode.errors import CaUnavailableError, NotFound, ValidationError

log = logging.getLogger(__name__)



def host_cert_ttl() -> dt.timedelta:
    """The lifetime of a host's server certificate and of the platform's client keypair for it: settings
    POWERNODE_HOST_CERT_MINUTES when > 0 (tests, the lab), else POWERNODE_HOST_CERT_DAYS (default 30)."""
    minutes = int(getattr(settings, "POWERNODE_HOST_CERT_MINUTES", 0) or 0)
    if minutes > 0:
        return dt.timedelta(minutes=minutes)
    return dt.timedelta(days=int(getattr(settings, "POWERNODE_HOST_CERT_DAYS", 30)))


def cert_renewal_due(not_after: dt.datetime | None, now: dt.datetime) -> bool:
    """Whether a host certificate (server or platform client) reached two thirds of its life: at most a
    third of the configured lifetime (``host_cert_ttl()``) is left (DESIGN §4 "Renewal")."""
    return not_after is None or not_after - now <= host_cert_ttl() / 3

OPERATOR_CLIENT_TTL = dt.timedelta(hours=8)
CLIENT_KINDS = (IssuedCertificate.Kind.PLATFORM_CLIENT, IssuedCertificate.Kind.OPERATOR_CLIENT)

_adapters: dict[tuple[Any, ...], CaAdapter] = {}
_adapters_lock = threading.Lock()


@dataclass(frozen=True)
class SignedHostCertificate:
    """What the handshake returns to the agent: the record plus the PEMs."""

    certificate: IssuedCertificate
    cert_pem: str
    chain_pem: str


@dataclass(frozen=True)
class IssuedClientKeypair:
    """A client keypair from a network's client CA, with what a TLS client needs beside it.

    ``cert_pem`` is the leaf; ``chain_pem`` the network's client CA then the root (what verifies the
    leaf); ``client_ca_pem`` the network's client CA alone (what that network's daemons trust);
    ``presented_pem`` the leaf then its client CA (the certificate file a client should present: a
    daemon that still trusts the root finds the chain too); ``server_ca_pem`` the chain that verifies
    the daemons' server certificates (the issuing intermediate, then the root).
    """

    certificate: IssuedCertificate
    key_pem: (
        str  # unencrypted PKCS#8; never stored by this app — callers encrypt it (secretbox) if they keep it
    )
    cert_pem: str
    chain_pem: str
    client_ca_pem: str = ""
    server_ca_pem: str = ""

    @property
    def presented_pem(self) -> str:
        return self.cert_pem.strip() + "\n" + self.client_ca_pem.strip() + "\n"


def _vault_settings() -> dict[str, Any]:
    return {
        "url": getattr(settings, "VAULT_ADDR", ""),
        "auth": get_vault_auth(),
        "pki_mount": getattr(settings, "VAULT_PKI_MOUNT", "pki_int"),
        "role": getattr(settings, "VAULT_PKI_ROLE", "node"),
        "root_mount": getattr(settings, "VAULT_PKI_ROOT_MOUNT", "pki"),
        "timeout": float(getattr(settings, "VAULT_TIMEOUT", 10)),
    }


def local_ca_dir() -> Path:
    configured = getattr(settings, "PKI_LOCAL_CA_DIR", "")
    return Path(configured) if configured else Path(settings.VAR_DIR) / "pki"


def platform_hosts() -> int:
    """settings POWERNODE_PLATFORM_HOSTS: how many machines run platform processes on this database."""
    return int(getattr(settings, "POWERNODE_PLATFORM_HOSTS", 1) or 1)


def local_ca_refusal() -> str:
    """Why the local CA may not be used here ("" when it may): its key and serial files live on one
    machine's disk, so with several platform hosts each would sign with a CA of its own."""
    hosts = platform_hosts()
    if hosts <= 1 or get_vault_auth() is not None:
        return ""
    return (
        f"The local CA (files in {local_ca_dir()} on this machine) cannot serve POWERNODE_PLATFORM_HOSTS={hosts} "
        "platform hosts: each host would sign with a CA of its own. Configure Vault/OpenBao (VAULT_ADDR with "
        "VAULT_ROLE_ID and VAULT_SECRET_ID, or VAULT_TOKEN; docs/runbooks/pki.md), or set "
        "POWERNODE_PLATFORM_HOSTS=1 when one machine runs the platform."
    )


def get_ca_adapter() -> CaAdapter:
    """The active adapter, cached per configuration so Vault's HTTP keep-alive session is reused.

    Raises ``CaUnavailableError`` when only the local CA is configured but several platform hosts are.
    """
    vault = _vault_settings()
    if vault["auth"] is not None:
        key: tuple[Any, ...] = ("vault", *vault.values())
    else:
        refusal = local_ca_refusal()
        if refusal:
            details = {"platform_hosts": platform_hosts(), "ca_adapter": "LocalCaAdapter"}
            raise CaUnavailableError(refusal, details=details)
        key = ("local", str(local_ca_dir()))
    with _adapters_lock:
        adapter = _adapters.get(key)
        if adapter is None:
            if key[0] == "vault":
                adapter = VaultCaAdapter(vault.pop("url"), **vault)
            else:
                adapter = LocalCaAdapter(local_ca_dir())
            _adapters[key] = adapter
    return adapter


def _overlay_128(overlay_address: str) -> str:
    text = str(overlay_address).strip()
    if text.endswith("/128"):
        text = text[:-4]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise ValidationError(
            f"overlay_address {overlay_address!r} is not an IPv6 address.",
            details={"overlay_address": str(overlay_address)},
        ) from None
    if address.version != 6:
        raise ValidationError(
            "overlay_address must be the instance's IPv6 overlay /128.",
            details={"overlay_address": str(overlay_address)},
        )
    return str(address)


def _record(
    *,
    signed: SignedCertificate,
    adapter: CaAdapter,
    kind: str,
    common_name: str,
    sans: list[str],
    host_id: str = "",
    operator: Any = None,
    actor: Actor | None,
) -> IssuedCertificate:
    """Write the row (and its event) for a certificate the CA already issued; revoke it if the write fails."""
    try:
        # no savepoint: a failure here fails the caller's transaction anyway (and the cert is revoked below)
        with transaction.atomic(savepoint=False):
            row = IssuedCertificate(
                serial=signed.serial,
                kind=kind,
                common_name=common_name,
                sans=sans,
                not_before=signed.not_before,
                not_after=signed.not_after,
                host_id=host_id or "",
                operator=operator,
                adapter=adapter.name,
                cert_pem=signed.cert_pem,
            )
            # the serial's uniqueness is the database's to enforce: skip full_clean's SELECT per unique field
            row.full_clean(validate_unique=False, validate_constraints=False)
            row.save(force_insert=True)
            event_record(
                kind=kinds.CERTIFICATE_ISSUED,
                actor=actor,
                host_id=host_id or "",
                data={
                    "serial": row.serial,
                    "kind": kind,
                    "common_name": common_name,
                    "sans": sans,
                    "not_after": row.not_after.isoformat(),
                    "adapter": adapter.name,
                },
            )
    except Exception:
        # The CA issued a certificate nobody will record: take it back so it cannot be used.
        try:
            adapter.revoke(serial=signed.serial, cert_pem=signed.cert_pem)
        except Exception:  # noqa: BLE001 - the original failure is the one to report
            log.exception("could not revoke unrecorded certificate %s", signed.serial)
        raise
    return row


def ca_sign_host_csr(
    *,
    csr_pem: str,
    host_id: str,
    overlay_address: str,
    ttl: dt.timedelta | None = None,
    actor: Actor | None = None,
) -> SignedHostCertificate:
    """Sign a DockerHost's server CSR: CN = ``host_id``, only SAN = ``overlay_address`` (/128), serverAuth.

    Whatever subject or SANs the CSR asks for are ignored. Raises ``InvalidCsrError`` (400, details.check
    names the failed check), ``ValidationError`` (bad host id or overlay) or ``CaUnavailableError`` (502);
    on any of them no ``IssuedCertificate`` row is written.
    """
    if not host_id or len(host_id) > 64:
        raise ValidationError("host_id must be 1 to 64 characters.", details={"host_id": host_id})
    overlay = _overlay_128(overlay_address)
    adapter = get_ca_adapter()
    with metrics.timed(metrics.CA_SIGN_SECONDS, adapter=adapter.name, usage="server"):
        signed = adapter.sign_csr(
            csr_pem=csr_pem, common_name=host_id, ip_sans=[overlay], usage="server", ttl=ttl or host_cert_ttl()
        )
    row = _record(
        signed=signed,
        adapter=adapter,
        kind=IssuedCertificate.Kind.SERVER,
        common_name=host_id,
        sans=[overlay],
        host_id=host_id,
        actor=actor,
    )
    return SignedHostCertificate(certificate=row, cert_pem=signed.cert_pem, chain_pem=signed.chain_pem)


def ca_server_certificate_for_same_key(*, serial: str, csr_pem: str, now: dt.datetime) -> IssuedCertificate | None:
    """The server certificate ``serial`` when it certifies the very key ``csr_pem`` carries, is not revoked and
    not due for renewal; else None. An agent that posts the same CSR again lost the first answer (its request
    was cut, e.g. the platform process serving it was killed after the commit): it is sent that certificate
    again instead of a second one being signed for one key."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    if not serial:
        return None
    row = IssuedCertificate.objects.filter(
        serial=serial, kind=IssuedCertificate.Kind.SERVER, revoked_at__isnull=True
    ).first()
    if row is None or cert_renewal_due(row.not_after, now):
        return None

    def spki(loaded: Any) -> bytes:
        return loaded.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    try:
        same = spki(x509.load_pem_x509_certificate(row.cert_pem.encode())) == spki(
            x509.load_pem_x509_csr(csr_pem.encode())
        )
    except ValueError:
        return None
    return row if same else None


def ca_client_ca_pem(*, network_id: str) -> str:
    """The client CA of an SDWAN network (that one certificate, PEM), made on first use.

    It is what that network's daemons trust (``tlscacert``) and the issuer of every client certificate
    for the network. ``CaUnavailableError`` (502) when the CA cannot make or read it; the next call
    tries again.
    """
    return get_ca_adapter().client_ca_pem(network_id=network_id)


def ca_issue_client_keypair(
    *,
    kind: str,
    common_name: str,
    network_id: str,
    host_id: str = "",
    operator: Any = None,
    ttl: dt.timedelta | None = None,
    actor: Actor | None = None,
) -> IssuedClientKeypair:
    """Generate an Ed25519 key on the platform and have ``network_id``'s client CA issue a clientAuth
    certificate for it: only daemons of that SDWAN network accept it.

    ``kind`` is ``platform_client`` (the platform's own connection to ``host_id``; CN e.g.
    ``platform:<host_id>``) or ``operator_client`` (a short-lived export for ``operator``; CN e.g.
    ``operator:<username>``). TTL defaults: ``host_cert_ttl()`` platform, 8 hours operator. The key is returned,
    not stored; callers keep it encrypted (``powernode.secretbox``) and/or in Vault KV.
    """
    if kind not in CLIENT_KINDS:
        raise ValidationError(f"kind must be one of {', '.join(CLIENT_KINDS)}.", details={"kind": kind})
    if kind == IssuedCertificate.Kind.PLATFORM_CLIENT and not host_id:
        raise ValidationError("A platform client certificate belongs to one host: pass host_id.")
    if ttl is None:
        ttl = host_cert_ttl() if kind == IssuedCertificate.Kind.PLATFORM_CLIENT else OPERATOR_CLIENT_TTL
    adapter = get_ca_adapter()
    client_ca_pem = adapter.client_ca_pem(network_id=network_id)
    server_ca_pem = adapter.ca_chain_pem()
    with metrics.timed(metrics.CA_SIGN_SECONDS, adapter=adapter.name, usage="client"):
        issued: IssuedKeypair = adapter.issue_keypair(
            common_name=common_name, usage="client", ttl=ttl, network_id=network_id
        )
    row = _record(
        signed=issued,
        adapter=adapter,
        kind=kind,
        common_name=common_name,
        sans=[],
        host_id=host_id,
        operator=operator,
        actor=actor,
    )
    return IssuedClientKeypair(
        certificate=row,
        key_pem=issued.key_pem,
        cert_pem=issued.cert_pem,
        chain_pem=issued.chain_pem,
        client_ca_pem=client_ca_pem,
        server_ca_pem=server_ca_pem,
    )


def ca_revoke(*, serial: str, reason: str = "", actor: Actor | None = None) -> IssuedCertificate:
    """Revoke one issued certificate at the CA (its CRL) and mark its row; already revoked is a no-op.

    ``NotFound`` when the platform has no row for the serial. When the CA itself no longer knows the
    serial (e.g. the local CA was rotated), the row is still marked revoked. ``CaUnavailableError``
    leaves the row unrevoked so the call can be repeated.
    """
    try:
        key = canonical_serial(serial)
    except ValueError:
        raise ValidationError(
            "serial must be hex (colon, hyphen or plain).", details={"serial": serial}
        ) from None
    row = IssuedCertificate.objects.filter(serial=key).first()
    if row is None:
        raise NotFound(f"No issued certificate with serial {key}.", details={"serial": key})
    if row.revoked_at is not None:
        return row
    adapter = get_ca_adapter()
    unknown_to_ca = False
    if row.adapter == adapter.name:
        try:
            adapter.revoke(serial=key, cert_pem=row.cert_pem)
        except NotFound:
            unknown_to_ca = True
    else:
        unknown_to_ca = True  # issued by the other adapter, whose CRL we no longer publish
    with transaction.atomic():
        updated = IssuedCertificate.objects.filter(pk=row.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now(), revocation_reason=(reason or "revoked")[:200]
        )
        row.refresh_from_db()
        if updated:
            event_record(
                kind=kinds.CERTIFICATE_REVOKED,
                actor=actor,
                host_id=row.host_id,
                data={
                    "serial": key,
                    "kind": row.kind,
                    "reason": row.revocation_reason,
                    "in_active_ca_crl": not unknown_to_ca,
                },
            )
    return row


def ca_revoke_host_certificates(
    *, host_id: str, reason: str = "host decommissioned", actor: Actor | None = None
) -> list[str]:
    """Revoke every certificate ever issued for ``host_id`` (server and platform client, replaced ones too).

    Returns the serials revoked by this call. Safe to repeat after a ``CaUnavailableError``: already
    revoked rows are skipped.
    """
    serials = list(
        IssuedCertificate.objects.filter(host_id=host_id, revoked_at__isnull=True)
        .order_by("created_at")
        .values_list("serial", flat=True)
    )
    for serial in serials:
        ca_revoke(serial=serial, reason=reason, actor=actor)
    return serials


def ca_revoke_replaced_server_certificates(
    *, host_id: str, current_serial: str, actor: Actor | None = None
) -> list[str]:
    """Revoke the host's server certificates other than ``current_serial`` (the one its daemon now serves).

    Called when the agent confirms a new certificate (``ready``), so a certificate re-signed by a
    repeated ``wants_cert`` does not leave the earlier ones valid. Returns the serials revoked.
    """
    return ca_revoke_replaced_certificates(
        host_id=host_id, kind=IssuedCertificate.Kind.SERVER, current_serial=current_serial,
        reason="replaced by a newer server certificate", actor=actor,
    )


def ca_revoke_replaced_certificates(
    *, host_id: str, kind: str, current_serial: str, reason: str, actor: Actor | None = None
) -> list[str]:
    """Revoke the host's unrevoked certificates of ``kind`` other than ``current_serial``; the serials revoked."""
    serials = list(
        IssuedCertificate.objects.filter(host_id=host_id, kind=kind, revoked_at__isnull=True)
        .exclude(serial=current_serial)
        .order_by("created_at")
        .values_list("serial", flat=True)
    )
    for serial in serials:
        ca_revoke(serial=serial, reason=reason, actor=actor)
    return serials


def unrevoked_replaced_certificates(*, kind: str, current: dict[str, str]) -> dict[str, list[str]]:
    """Of the hosts in ``current`` (host id → its current serial of ``kind``), the unrevoked certificates of
    ``kind`` that are not the current one, by host id: one query, whatever the number of hosts."""
    if not current:
        return {}
    rows = (
        IssuedCertificate.objects.filter(kind=kind, revoked_at__isnull=True, host_id__in=list(current))
        .exclude(serial__in=[s for s in current.values() if s])
        .order_by("created_at")
        .values_list("host_id", "serial")
    )
    found: dict[str, list[str]] = {}
    for host_id, serial in rows:
        found.setdefault(host_id, []).append(serial)
    return found


def ca_chain_pem() -> str:
    """The active CA's chain (intermediate then root) as PEM."""
    return get_ca_adapter().ca_chain_pem()


def ca_crl_pem() -> str:
    """The active CA's current CRL as PEM."""
    return get_ca_adapter().crl_pem()


def ca_ready() -> str:
    """For ``/readyz``: "" when the active CA (Vault's when configured, else the local one) could sign now."""
    return get_ca_adapter().ready()


def ca_status() -> dict[str, Any]:
    """CA adapter name, reachability and Vault facts for ``platform_provisioning_status``.

    Never raises because the CA or Vault is down: that is reported as ``reachable: false``.
    """
    try:
        adapter = get_ca_adapter()
    except CaUnavailableError as exc:  # the local CA refused (several platform hosts)
        status = CaStatus(adapter="LocalCaAdapter", reachable=False, details={"error": exc.message})
    else:
        status = adapter.status()
    vault_cfg = _vault_settings()
    configured = vault_cfg["auth"] is not None
    vault: dict[str, Any] = {
        "configured": configured,
        "reachable": status.reachable if configured else None,
        "kv_configured": kv_configured(),
        "kv_pending_writes": VaultKvOutbox.objects.filter(status=VaultKvOutbox.Status.PENDING).count(),
    }
    if configured:
        vault.update(
            addr=vault_cfg["url"],
            credential=vault_cfg["auth"].method,  # static | approle
            pki_mount=vault_cfg["pki_mount"],
            role=vault_cfg["role"],
            mounts=status.details.get("mounts", {}),
            roles=status.details.get("roles", {}),
            ready=bool(status.details.get("ready")),
        )
        if "error" in status.details:
            vault["error"] = status.details["error"]
    ca = {"reachable": status.reachable}
    if not configured:
        ca.update(status.details)
    return {"ca_adapter": status.adapter, "ca": ca, "vault": vault}
