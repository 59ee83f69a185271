"""The one CSR builder for tests and benchmarks: keys of each type, CSRs that ask for too much, broken CSRs.

The agent's own builder (powernode_agent.handshake.build_csr_pem) is product code; tests that play the
real agent use it, everything else builds its CSRs here.
"""

from __future__ import annotations

import ipaddress

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

KEY_TYPES = ("ed25519", "p256", "p384", "rsa")
PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def make_key(key_type: str = "ed25519") -> PrivateKey:
    if key_type == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if key_type == "p256":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "p384":
        return ec.generate_private_key(ec.SECP384R1())
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raise ValueError(key_type)


def _digest(key: PrivateKey) -> hashes.HashAlgorithm | None:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return None
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp384r1":
        return hashes.SHA384()
    return hashes.SHA256()


def make_csr(
    *,
    key: PrivateKey | None = None,
    key_type: str = "ed25519",
    common_name: str = "requested-by-agent",
    sans: list[x509.GeneralName] | None = None,
) -> str:
    """A PEM CSR signed by ``key`` (a new key of ``key_type`` when none is given)."""
    key = key if key is not None else make_key(key_type)
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(key, _digest(key)).public_bytes(serialization.Encoding.PEM).decode()


def make_csr_and_key(*, common_name: str = "requested-by-agent") -> tuple[str, str]:
    """An Ed25519 CSR and its private key (PKCS#8 PEM), for a daemon that will serve the signed certificate."""
    key = ed25519.Ed25519PrivateKey.generate()
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return make_csr(key=key, common_name=common_name), key_pem


def make_bad_signature_csr() -> str:
    """A well-formed Ed25519 CSR whose signature no longer matches (last signature byte flipped)."""
    der = bytearray(x509.load_pem_x509_csr(make_csr().encode()).public_bytes(serialization.Encoding.DER))
    der[-1] ^= 0xFF  # the signature BIT STRING ends the DER
    return x509.load_der_x509_csr(bytes(der)).public_bytes(serialization.Encoding.PEM).decode()


def greedy_sans() -> list[x509.GeneralName]:
    """SANs an attacker-controlled agent might ask for; the platform must drop all of them."""
    return [
        x509.DNSName("evil.example"),
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("fd00:ffff::1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
        x509.UniformResourceIdentifier("spiffe://evil/agent"),
    ]
