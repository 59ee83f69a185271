"""Checks every CSR passes before any adapter signs it: size, PEM, signature, key type."""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from powernode.errors import InvalidCsrError

MAX_CSR_BYTES = 16 * 1024


def _fail(check: str, message: str) -> InvalidCsrError:
    return InvalidCsrError(f"CSR rejected ({check}): {message}", details={"check": check})


def validate_csr(csr_pem: str | bytes | None) -> x509.CertificateSigningRequest:
    """Parse and check a CSR; raise ``InvalidCsrError`` whose ``details.check`` names the failed check.

    Checks, in order: ``present`` (non-empty), ``size`` (under 16 KiB), ``pem`` (parses as a PEM
    CERTIFICATE REQUEST), ``signature`` (self-signature verifies), ``key_type`` (Ed25519 or ECDSA P-256).
    """
    if csr_pem is None:
        raise _fail("present", "no csr_pem was sent")
    data = csr_pem.encode() if isinstance(csr_pem, str) else bytes(csr_pem)
    if not data.strip():
        raise _fail("present", "csr_pem is empty")
    if len(data) >= MAX_CSR_BYTES:
        raise _fail("size", f"csr_pem is {len(data)} bytes; the limit is {MAX_CSR_BYTES}")
    if b"-----BEGIN CERTIFICATE REQUEST-----" not in data:
        raise _fail("pem", "no '-----BEGIN CERTIFICATE REQUEST-----' block found")
    try:
        csr = x509.load_pem_x509_csr(data)
    except (ValueError, TypeError) as exc:
        raise _fail("pem", f"the CERTIFICATE REQUEST block does not parse ({exc})") from None
    try:
        key = csr.public_key()
    except (ValueError, TypeError) as exc:
        raise _fail("key_type", f"the CSR's public key is not usable ({exc})") from None
    # Key type before the signature: an RSA CSR is refused for what it is, not for how it is signed.
    if isinstance(key, ed25519.Ed25519PublicKey):
        pass
    elif isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        pass
    else:
        kind = type(key).__name__.removeprefix("_").replace("PublicKey", "")
        raise _fail("key_type", f"the key is {kind}; only Ed25519 (or ECDSA P-256) keys are accepted")
    try:
        valid = csr.is_signature_valid
    except Exception as exc:  # noqa: BLE001 - any failure here means we cannot trust the CSR
        raise _fail("signature", f"the signature cannot be checked ({exc})") from None
    if not valid:
        raise _fail("signature", "the CSR's signature does not verify against its public key")
    return csr
