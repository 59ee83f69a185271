"""The narrow CA interface every adapter implements, and the value types it returns.

Serials travel everywhere in one canonical form: lowercase colon-separated hex of the serial's
minimal big-endian bytes (``3a:0f:...``), which is also the form Vault/OpenBao report.
"""

from __future__ import annotations

import abc
import datetime as dt
import re
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import NameOID

from powernode.errors import ValidationError

Usage = Literal["server", "client"]
USAGES: tuple[str, ...] = ("server", "client")


def format_serial(serial: int) -> str:
    """Canonical serial form: lowercase colon hex of the minimal big-endian bytes."""
    if serial < 0:
        raise ValueError("certificate serials are positive")
    length = max(1, (serial.bit_length() + 7) // 8)
    return serial.to_bytes(length, "big").hex(":")


def parse_serial(text: str) -> int:
    """Accept colon, hyphen or plain hex (any case) and return the integer serial."""
    cleaned = text.strip().lower().replace(":", "").replace("-", "")
    if not cleaned:
        raise ValueError("empty serial")
    return int(cleaned, 16)


def canonical_serial(text: str) -> str:
    """Normalise any accepted serial spelling to the canonical form."""
    return format_serial(parse_serial(text))


CLIENT_CA_CN_PREFIX = "powernode client CA "
_CLIENT_CA_CN = re.compile(r"client CA ([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$")


def network_key(network_id: str) -> str:
    """The canonical form (lowercase hyphenated UUID) of an SDWAN network id; ``ValidationError`` otherwise."""
    try:
        return str(uuid.UUID(str(network_id)))
    except (ValueError, TypeError, AttributeError):
        raise ValidationError(
            "network_id must be an SDWAN network id (a UUID).", details={"network_id": str(network_id)}
        ) from None


def client_network(usage: str, network_id: str | None) -> str | None:
    """``network_id`` in canonical form when given; only client certificates come from a network's CA."""
    if network_id is None:
        return None
    if usage != "client":
        raise ValidationError(
            "Only client certificates come from a network's client CA; server certificates have no network_id.",
            details={"usage": usage, "network_id": str(network_id)},
        )
    return network_key(network_id)


def client_ca_common_name(network_id: str) -> str:
    """The subject CN of a network's client CA: it names the network, so an issuer says which CA it is."""
    return CLIENT_CA_CN_PREFIX + network_key(network_id)


def client_ca_network(cert: x509.Certificate) -> str | None:
    """The network id named by the issuer of ``cert`` when a network's client CA issued it, else None."""
    names = cert.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)
    match = _CLIENT_CA_CN.search(str(names[0].value)) if names else None
    return match.group(1) if match else None


@dataclass(frozen=True)
class SignedCertificate:
    """A certificate the CA issued, with the chain (intermediate then root) that verifies it."""

    cert_pem: str
    chain_pem: str
    serial: str
    not_before: dt.datetime
    not_after: dt.datetime

    @classmethod
    def from_pem(cls, cert_pem: str, chain_pem: str) -> SignedCertificate:
        cert = x509.load_pem_x509_certificate(cert_pem.encode())
        return cls(
            cert_pem=cert_pem,
            chain_pem=chain_pem,
            serial=format_serial(cert.serial_number),
            not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc,
        )


@dataclass(frozen=True)
class IssuedKeypair(SignedCertificate):
    """A client certificate plus the private key the platform generated for it (PKCS#8 PEM)."""

    key_pem: str = ""


@dataclass(frozen=True)
class CaStatus:
    """What ``platform_provisioning_status`` reports about the CA; never raises for a down CA."""

    adapter: str
    reachable: bool
    details: dict[str, Any] = field(default_factory=dict)


def generate_ed25519_key() -> tuple[ed25519.Ed25519PrivateKey, str]:
    """A fresh Ed25519 key and its unencrypted PKCS#8 PEM."""
    key = ed25519.Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return key, pem


class CaAdapter(abc.ABC):
    """Sign, issue, revoke and publish through one CA backend.

    The platform, never the CSR, decides the subject: CN = ``common_name``, the only SANs are
    ``ip_sans``, EKU serverAuth or clientAuth from ``usage``. Server certificates come from the one
    issuing intermediate (``ca_chain_pem``); a client certificate given ``network_id`` comes from that
    SDWAN network's own client CA (made on first use, signed by the same root), which is all a
    daemon of that network trusts, so a client certificate for one network opens no other.
    Vendor errors leave an adapter only as ``CaUnavailableError`` (502), ``InvalidCsrError``/
    ``ValidationError`` (400) or ``NotFound``.
    """

    name: str = "CaAdapter"

    @abc.abstractmethod
    def sign_csr(
        self,
        *,
        csr_pem: str,
        common_name: str,
        ip_sans: list[str],
        usage: Usage,
        ttl: dt.timedelta,
        network_id: str | None = None,
    ) -> SignedCertificate:
        """Sign a CSR whose key the caller holds; the CSR's own subject and SANs are ignored.

        With ``network_id`` (client usage only) the network's client CA signs, and ``chain_pem`` is that
        CA then the root.
        """

    @abc.abstractmethod
    def issue_keypair(
        self, *, common_name: str, usage: Usage = "client", ttl: dt.timedelta, network_id: str | None = None
    ) -> IssuedKeypair:
        """Generate an Ed25519 key on the platform and have the CA certify it (``network_id`` as in sign_csr)."""

    @abc.abstractmethod
    def client_ca_pem(self, *, network_id: str) -> str:
        """The network's client CA certificate alone (PEM): what that network's daemons trust as ``tlscacert``.

        Made on first use (signed by the root); an existing one is never replaced.
        """

    @abc.abstractmethod
    def revoke(self, *, serial: str, cert_pem: str | None = None) -> dt.datetime:
        """Revoke a serial issued by this CA (idempotent); return the revocation time.

        ``cert_pem``, when given, is the certificate itself: an adapter that cannot find the serial in
        its own records may accept it as proof of issuance. ``NotFound`` for a serial it never issued.
        """

    @abc.abstractmethod
    def ca_chain_pem(self) -> str:
        """The issuing chain, intermediate first then root, as concatenated PEM."""

    @abc.abstractmethod
    def crl_pem(self) -> str:
        """The issuing CA's current CRL as PEM."""

    @abc.abstractmethod
    def status(self) -> CaStatus:
        """Reachability and configuration facts; must not raise when the backend is down."""

    def ready(self) -> str:
        """For ``/readyz``: "" when this CA could sign now, else the reason; cheaper than ``status``, never raises."""
        status = self.status()
        if status.reachable:
            return ""
        return str(status.details.get("error") or f"{self.name} does not answer")
