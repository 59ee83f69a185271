"""Certificate checks (cryptography and the openssl CLI) shared by the PKI tests; CSRs come from tests/csr.py."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def load_cert(pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode())


def split_pems(pem: str) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(pem.encode())


def eku(cert: x509.Certificate) -> list[x509.ObjectIdentifier]:
    return list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def ip_sans(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [str(a) for a in san.get_values_for_type(x509.IPAddress)]


def all_sans(cert: x509.Certificate) -> list[x509.GeneralName]:
    try:
        return list(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except x509.ExtensionNotFound:
        return []


def common_name(cert: x509.Certificate) -> str:
    return cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value


SERVER_AUTH = ExtendedKeyUsageOID.SERVER_AUTH
CLIENT_AUTH = ExtendedKeyUsageOID.CLIENT_AUTH


def openssl_verify(
    cert_pem: str, chain_pem: str, *, purpose: str, crl_pem: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``openssl verify`` with the chain as trust store (root as anchor, intermediate as untrusted)."""
    with tempfile.TemporaryDirectory() as tmp:
        certs = split_pems(chain_pem)
        root = Path(tmp, "root.pem")
        root.write_bytes(certs[-1].public_bytes(serialization.Encoding.PEM))
        untrusted = Path(tmp, "untrusted.pem")
        untrusted.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs[:-1]))
        leaf = Path(tmp, "leaf.pem")
        leaf.write_text(cert_pem)
        cmd = ["openssl", "verify", "-CAfile", str(root), "-untrusted", str(untrusted), "-purpose", purpose]
        if crl_pem is not None:
            crl = Path(tmp, "crl.pem")
            crl.write_text(crl_pem)
            cmd += ["-crl_check", "-CRLfile", str(crl)]
        return subprocess.run([*cmd, str(leaf)], capture_output=True, text=True, timeout=30)


def openssl_text(cert_pem: str) -> str:
    """``openssl x509 -text`` of the certificate, for checks made by a second implementation."""
    return subprocess.run(
        ["openssl", "x509", "-noout", "-text"],
        input=cert_pem,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
