"""The narrow CA interface every adapter implements, and the value types it returns.

Serials travel everywhere in one canonical form: lowercase colon-separated hex of the serial's
minimal big-endian bytes (``3a:0f:...``), which is also the form Vault/OpenBao report.
"""

from __future__ import annotations

import abc
import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

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
    ``ip_sans``, EKU serverAuth or clientAuth from ``usage``. Vendor errors leave an adapter only
    as ``CaUnavailableError`` (502), ``InvalidCsrError``/``ValidationError`` (400) or ``NotFound``.
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
    ) -> SignedCertificate:
        """Sign a CSR whose key the caller holds; the CSR's own subject and SANs are ignored."""

    @abc.abstractmethod
    def issue_keypair(self, *, common_name: str, usage: Usage = "client", ttl: dt.timedelta) -> IssuedKeypair:
        """Generate an Ed25519 key on the platform and have the CA certify it."""

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
