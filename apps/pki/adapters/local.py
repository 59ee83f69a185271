"""LocalCaAdapter: an Ed25519 root and intermediate kept as PEM files in a directory (development CA).

Layout of ``ca_dir``: ``root.pem``, ``root.key.pem``, ``intermediate.pem``, ``intermediate.key.pem``,
``clients/<network id>/{ca.pem,ca.key.pem}`` (each SDWAN network's client CA, made on first use and signed
by the root), ``revoked.json`` (serial -> revocation time) and ``issued.log`` (one line per issued certificate:
serial, not_after, CN — like ``openssl ca``'s index, so revocation can refuse serials it never issued).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import ipaddress
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from apps.pki.adapters.base import (
    USAGES,
    CaAdapter,
    CaStatus,
    IssuedKeypair,
    SignedCertificate,
    Usage,
    canonical_serial,
    client_ca_common_name,
    client_ca_network,
    client_network,
    format_serial,
    generate_ed25519_key,
    parse_serial,
)
from apps.pki.adapters.csr import validate_csr
from powernode.errors import CaUnavailableError, ConflictError, NotFound, ValidationError

ROOT_CERT = "root.pem"
ROOT_KEY = "root.key.pem"
INTERMEDIATE_CERT = "intermediate.pem"
INTERMEDIATE_KEY = "intermediate.key.pem"
REVOKED_FILE = "revoked.json"
ISSUED_LOG = "issued.log"
LOCK_FILE = ".lock"
CLIENTS_DIR = "clients"
CLIENT_CA_CERT = "ca.pem"
CLIENT_CA_KEY = "ca.key.pem"
CA_FILES = (ROOT_CERT, ROOT_KEY, INTERMEDIATE_CERT, INTERMEDIATE_KEY)

ROOT_LIFETIME = dt.timedelta(days=3650)
INTERMEDIATE_LIFETIME = dt.timedelta(days=1825)
DEFAULT_MAX_TTL = dt.timedelta(days=365)
# Leaves start slightly in the past so a peer whose clock lags a little still accepts them.
BACKDATE = dt.timedelta(seconds=30)
CRL_LIFETIME = dt.timedelta(days=1)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write via a temp file in the same directory and rename, so readers never see half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _key_pem(key: ed25519.Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _ca_cert(
    *,
    subject: x509.Name,
    issuer: x509.Name,
    public_key: ed25519.Ed25519PublicKey,
    signing_key: ed25519.Ed25519PrivateKey,
    issuer_public_key: ed25519.Ed25519PublicKey,
    lifetime: dt.timedelta,
    path_length: int | None,
) -> x509.Certificate:
    now = _now()
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + lifetime)
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_public_key), critical=False)
        .sign(signing_key, None)
    )


def init_local_ca(
    ca_dir: str | os.PathLike[str], *, force: bool = False, name: str = "powernode local"
) -> dict[str, str]:
    """Create an Ed25519 root and intermediate under ``ca_dir``.

    Refuses (``ConflictError``) when a CA already exists there unless ``force``; with ``force`` the old
    CA, its revocation list and issued copies are replaced, so every certificate it issued stops
    verifying against the new chain. Returns the subjects and serials made.
    """
    path = Path(ca_dir)
    existing = [f for f in CA_FILES if (path / f).exists()]
    if existing and not force:
        raise ConflictError(
            f"A local CA already exists in {path} ({', '.join(existing)}); pass force to replace it.",
            details={"ca_dir": str(path), "existing": existing},
        )
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)

    root_key = ed25519.Ed25519PrivateKey.generate()
    root_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} root CA")])
    root = _ca_cert(
        subject=root_name,
        issuer=root_name,
        public_key=root_key.public_key(),
        signing_key=root_key,
        issuer_public_key=root_key.public_key(),
        lifetime=ROOT_LIFETIME,
        path_length=1,
    )
    int_key = ed25519.Ed25519PrivateKey.generate()
    int_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} intermediate CA")])
    intermediate = _ca_cert(
        subject=int_name,
        issuer=root_name,
        public_key=int_key.public_key(),
        signing_key=root_key,
        issuer_public_key=root_key.public_key(),
        lifetime=INTERMEDIATE_LIFETIME,
        path_length=0,
    )
    # Old state belongs to the old CA: a new intermediate must not inherit its revocations, and the
    # networks' client CAs (signed by the old root) are made again on first use.
    shutil.rmtree(path / CLIENTS_DIR, ignore_errors=True)
    (path / ISSUED_LOG).unlink(missing_ok=True)
    (path / REVOKED_FILE).unlink(missing_ok=True)
    _atomic_write(path / ROOT_KEY, _key_pem(root_key), 0o600)
    _atomic_write(path / INTERMEDIATE_KEY, _key_pem(int_key), 0o600)
    _atomic_write(path / ROOT_CERT, root.public_bytes(serialization.Encoding.PEM))
    _atomic_write(path / INTERMEDIATE_CERT, intermediate.public_bytes(serialization.Encoding.PEM))
    return {
        "ca_dir": str(path),
        "root_subject": root.subject.rfc4514_string(),
        "root_serial": format_serial(root.serial_number),
        "intermediate_subject": intermediate.subject.rfc4514_string(),
        "intermediate_serial": format_serial(intermediate.serial_number),
    }


class LocalCaAdapter(CaAdapter):
    """Signs with the intermediate key from ``ca_dir``; safe for threads and for several processes."""

    name = "LocalCaAdapter"

    def __init__(self, ca_dir: str | os.PathLike[str], *, max_ttl: dt.timedelta = DEFAULT_MAX_TTL) -> None:
        self.ca_dir = Path(ca_dir)
        self.max_ttl = max_ttl
        self._loaded: tuple[Any, ...] | None = None
        self._loaded_mtime: float | None = None
        self._issued_fd: int | None = None
        self._thread_lock = threading.Lock()
        # network id -> (root mtime it was loaded under, client CA cert, its key, chain PEM)
        self._client_cas: dict[str, tuple[float, x509.Certificate, ed25519.Ed25519PrivateKey, str]] = {}

    def close(self) -> None:
        with self._thread_lock:
            if self._issued_fd is not None:
                os.close(self._issued_fd)
                self._issued_fd = None

    def __del__(self) -> None:
        fd = getattr(self, "_issued_fd", None)
        if fd is not None:
            os.close(fd)

    # -- CA material ------------------------------------------------------------------------
    def _load(self) -> tuple[x509.Certificate, ed25519.Ed25519PrivateKey, x509.Certificate, str]:
        """(intermediate cert, intermediate key, root cert, chain PEM); reloaded after a rotation."""
        try:
            mtime = (self.ca_dir / INTERMEDIATE_CERT).stat().st_mtime
        except OSError:
            raise CaUnavailableError(
                f"No local CA in {self.ca_dir}: run `python manage.py pki_init_local_ca`.",
                details={"ca_dir": str(self.ca_dir)},
            ) from None
        with self._thread_lock:
            if self._loaded is None or self._loaded_mtime != mtime:
                try:
                    int_pem = (self.ca_dir / INTERMEDIATE_CERT).read_bytes()
                    root_pem = (self.ca_dir / ROOT_CERT).read_bytes()
                    key = serialization.load_pem_private_key(
                        (self.ca_dir / INTERMEDIATE_KEY).read_bytes(), password=None
                    )
                    intermediate = x509.load_pem_x509_certificate(int_pem)
                    root = x509.load_pem_x509_certificate(root_pem)
                except (OSError, ValueError) as exc:
                    raise CaUnavailableError(
                        f"The local CA in {self.ca_dir} cannot be read: {exc}",
                        details={"ca_dir": str(self.ca_dir)},
                    ) from None
                if not isinstance(key, ed25519.Ed25519PrivateKey):
                    raise CaUnavailableError(f"The local CA key in {self.ca_dir} is not Ed25519.")
                chain = int_pem.decode().strip() + "\n" + root_pem.decode().strip() + "\n"
                self._loaded = (intermediate, key, root, chain)
                self._loaded_mtime = mtime
                if self._issued_fd is not None:  # a rotated CA starts a new issued.log
                    os.close(self._issued_fd)
                    self._issued_fd = None
            return self._loaded  # type: ignore[return-value]

    @contextmanager
    def _file_lock(self) -> Iterator[None]:
        # flock serialises revocations across worker processes sharing the directory.
        with open(self.ca_dir / LOCK_FILE, "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    # -- the networks' client CAs ------------------------------------------------------------
    def _client_ca(self, network_id: str) -> tuple[x509.Certificate, ed25519.Ed25519PrivateKey, str]:
        """(client CA cert, key, chain PEM = that CA then the root) of a network; made on first use."""
        _int, _key, root, _chain = self._load()
        root_mtime = (self.ca_dir / ROOT_CERT).stat().st_mtime
        cached = self._client_cas.get(network_id)
        if cached is not None and cached[0] == root_mtime:
            return cached[1], cached[2], cached[3]
        directory = self.ca_dir / CLIENTS_DIR / network_id
        if not (directory / CLIENT_CA_CERT).exists():
            self._make_client_ca(network_id, directory)
        try:
            pem = (directory / CLIENT_CA_CERT).read_bytes()
            cert = x509.load_pem_x509_certificate(pem)
            key = serialization.load_pem_private_key((directory / CLIENT_CA_KEY).read_bytes(), password=None)
        except (OSError, ValueError) as exc:
            raise CaUnavailableError(
                f"The client CA of network {network_id} in {directory} cannot be read: {exc}",
                details={"network_id": network_id},
            ) from None
        if not isinstance(key, ed25519.Ed25519PrivateKey):
            raise CaUnavailableError(f"The client CA key in {directory} is not Ed25519.")
        root_pem = root.public_bytes(serialization.Encoding.PEM).decode()
        chain = pem.decode().strip() + "\n" + root_pem.strip() + "\n"
        self._client_cas[network_id] = (root_mtime, cert, key, chain)
        return cert, key, chain

    def _make_client_ca(self, network_id: str, directory: Path) -> None:
        """Sign a new client CA for the network with the root; never replaces one that exists."""
        with self._file_lock():
            if (directory / CLIENT_CA_CERT).exists():  # another process made it while we waited
                return
            if (directory / CLIENT_CA_KEY).exists():
                raise CaUnavailableError(
                    f"{directory} holds a client CA key without its certificate; remove the directory to "
                    "make the network's client CA again (nothing it issued will verify any more).",
                    details={"network_id": network_id},
                )
            try:
                root_key = serialization.load_pem_private_key(
                    (self.ca_dir / ROOT_KEY).read_bytes(), password=None
                )
                root = x509.load_pem_x509_certificate((self.ca_dir / ROOT_CERT).read_bytes())
            except (OSError, ValueError) as exc:
                raise CaUnavailableError(
                    f"The local root CA in {self.ca_dir} cannot sign a client CA: {exc}"
                ) from None
            if not isinstance(root_key, ed25519.Ed25519PrivateKey):
                raise CaUnavailableError(f"The local root key in {self.ca_dir} is not Ed25519.")
            key = ed25519.Ed25519PrivateKey.generate()
            cert = _ca_cert(
                subject=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, client_ca_common_name(network_id))]),
                issuer=root.subject,
                public_key=key.public_key(),
                signing_key=root_key,
                issuer_public_key=root_key.public_key(),
                lifetime=min(INTERMEDIATE_LIFETIME, root.not_valid_after_utc - _now()),
                path_length=0,
            )
            try:
                directory.mkdir(parents=True, exist_ok=True, mode=0o700)
                fd = os.open(directory / CLIENT_CA_KEY, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as fh:
                    fh.write(_key_pem(key))
                _atomic_write(directory / CLIENT_CA_CERT, cert.public_bytes(serialization.Encoding.PEM))
            except OSError as exc:
                raise CaUnavailableError(f"The local CA cannot store a client CA in {directory}: {exc}") from None

    def client_ca_pem(self, *, network_id: str) -> str:
        cert = self._client_ca(client_network("client", network_id) or "")[0]
        return cert.public_bytes(serialization.Encoding.PEM).decode()

    def _read_revoked(self) -> dict[str, str]:
        try:
            return json.loads((self.ca_dir / REVOKED_FILE).read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise CaUnavailableError(f"The local CA's revocation list cannot be read: {exc}") from None

    # -- signing ----------------------------------------------------------------------------
    def _issue(
        self,
        *,
        public_key: Any,
        common_name: str,
        ip_sans: list[str],
        usage: Usage,
        ttl: dt.timedelta,
        network_id: str | None,
    ) -> SignedCertificate:
        if usage not in USAGES:
            raise ValidationError(f"usage must be one of {', '.join(USAGES)}", details={"usage": usage})
        network = client_network(usage, network_id)
        if not common_name or len(common_name) > 64:
            raise ValidationError(
                "common_name must be 1 to 64 characters", details={"common_name": common_name}
            )
        try:
            addresses = [ipaddress.ip_address(a) for a in ip_sans]
        except ValueError as exc:
            raise ValidationError(f"invalid IP SAN: {exc}", details={"ip_sans": ip_sans}) from None
        if ttl <= dt.timedelta(0):
            raise ValidationError("ttl must be positive", details={"ttl_seconds": ttl.total_seconds()})
        intermediate, key, _root, chain = self._load()
        if network is not None:
            intermediate, key, chain = self._client_ca(network)
        now = _now()
        # Like Vault's role max_ttl and leaf_not_after_behavior=truncate: cap quietly, never outlive the CA.
        not_after = min(now + min(ttl, self.max_ttl), intermediate.not_valid_after_utc)
        eku = ExtendedKeyUsageOID.SERVER_AUTH if usage == "server" else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(intermediate.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False
            )
        )
        if addresses:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(a) for a in addresses]), critical=False
            )
        cert = builder.sign(key, None)
        cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
        serial = format_serial(cert.serial_number)
        try:
            self._record_issued(cert, serial)
        except OSError as exc:
            raise CaUnavailableError(f"The local CA cannot record the issued certificate: {exc}") from None
        return SignedCertificate(
            cert_pem=cert_pem,
            chain_pem=chain,
            serial=serial,
            not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc,
        )

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
        csr = validate_csr(csr_pem)
        return self._issue(
            public_key=csr.public_key(),
            common_name=common_name,
            ip_sans=ip_sans,
            usage=usage,
            ttl=ttl,
            network_id=network_id,
        )

    def issue_keypair(
        self, *, common_name: str, usage: Usage = "client", ttl: dt.timedelta, network_id: str | None = None
    ) -> IssuedKeypair:
        key, key_pem = generate_ed25519_key()
        signed = self._issue(
            public_key=key.public_key(),
            common_name=common_name,
            ip_sans=[],
            usage=usage,
            ttl=ttl,
            network_id=network_id,
        )
        return IssuedKeypair(**signed.__dict__, key_pem=key_pem)

    def _record_issued(self, cert: x509.Certificate, serial: str) -> None:
        # One O_APPEND write per signature on a descriptor kept open, and no fsync: this log only lets
        # revoke() refuse foreign serials, and a line lost in a crash is made up for by the cert_pem
        # the caller (whose DB row is durable) passes to revoke(). Creating or syncing a file per
        # signature cost more than the signature itself.
        with self._thread_lock:
            if self._issued_fd is None:
                self._issued_fd = os.open(
                    self.ca_dir / ISSUED_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644
                )
            cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
            line = f"{serial} {cert.not_valid_after_utc.isoformat()} {cn[0].value if cn else ''}\n"
            os.write(self._issued_fd, line.encode())

    def _in_issued_log(self, serial: str) -> bool:
        try:
            data = (self.ca_dir / ISSUED_LOG).read_bytes()
        except FileNotFoundError:
            return False
        return data.startswith(f"{serial} ".encode()) or f"\n{serial} ".encode() in data

    def _issued_by_us(self, serial: str, cert_pem: str | None) -> bool:
        if self._in_issued_log(serial):
            return True
        if not cert_pem:
            return False
        issuer = self._load()[0]
        try:
            cert = x509.load_pem_x509_certificate(cert_pem.encode())
            network = client_ca_network(cert)
            if network is not None:
                if not (self.ca_dir / CLIENTS_DIR / network / CLIENT_CA_CERT).exists():
                    return False
                issuer = self._client_ca(network)[0]
            cert.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature):
            return False
        return format_serial(cert.serial_number) == serial

    # -- revocation -------------------------------------------------------------------------
    def revoke(self, *, serial: str, cert_pem: str | None = None) -> dt.datetime:
        try:
            canonical = canonical_serial(serial)
        except ValueError:
            raise ValidationError(
                "serial must be hex (colon, hyphen or plain)", details={"serial": serial}
            ) from None
        self._load()
        if not self._issued_by_us(canonical, cert_pem):
            raise NotFound(f"This CA never issued serial {canonical}.", details={"serial": canonical})
        with self._file_lock():
            revoked = self._read_revoked()
            if canonical in revoked:
                return dt.datetime.fromisoformat(revoked[canonical])
            when = _now().replace(microsecond=0)
            revoked[canonical] = when.isoformat()
            try:
                data = json.dumps(revoked, indent=1, sort_keys=True).encode()
                _atomic_write(self.ca_dir / REVOKED_FILE, data)
            except OSError as exc:
                raise CaUnavailableError(f"The local CA cannot write its revocation list: {exc}") from None
        return when

    def revoked_serials(self) -> dict[str, dt.datetime]:
        """Serial -> revocation time, as recorded in ``revoked.json``."""
        return {s: dt.datetime.fromisoformat(t) for s, t in self._read_revoked().items()}

    # -- publication ------------------------------------------------------------------------
    def ca_chain_pem(self) -> str:
        return self._load()[3]

    def crl_pem(self) -> str:
        intermediate, key, _root, _chain = self._load()
        now = _now()
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(intermediate.subject)
            .last_update(now - BACKDATE)
            .next_update(now + CRL_LIFETIME)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False
            )
            # The CRL number only needs to grow; seconds since the epoch do without a counter file.
            .add_extension(x509.CRLNumber(int(now.timestamp())), critical=False)
        )
        for serial, when in sorted(self.revoked_serials().items()):
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder()
                .serial_number(parse_serial(serial))
                .revocation_date(when)
                .build()
            )
        return builder.sign(key, None).public_bytes(serialization.Encoding.PEM).decode()

    def status(self) -> CaStatus:
        try:
            intermediate, _key, root, _chain = self._load()
            revoked = len(self._read_revoked())
        except CaUnavailableError as exc:
            return CaStatus(
                adapter=self.name, reachable=False, details={"ca_dir": str(self.ca_dir), "error": exc.message}
            )
        return CaStatus(
            adapter=self.name,
            reachable=True,
            details={
                "ca_dir": str(self.ca_dir),
                "root_subject": root.subject.rfc4514_string(),
                "intermediate_subject": intermediate.subject.rfc4514_string(),
                "intermediate_not_after": intermediate.not_valid_after_utc.isoformat(),
                "revoked_count": revoked,
            },
        )
