"""VaultCaAdapter: signing through a Vault/OpenBao PKI mount with hvac, plus ``bootstrap`` for a fresh server.

Two roles on the intermediate mount: ``node`` (serverAuth, the overlay /128 as the only SAN) and
``<role>-client`` (clientAuth, no SANs). Each SDWAN network has its own client CA: a PKI mount
``pki_clients/<network id hex>`` holding an intermediate signed by the root, with the ``<role>-client``
role; it is made on first use (or by ``bootstrap`` for the networks it is given).
Both roles ignore the CSR's CN and SANs (use_csr_* = false), so the
platform alone decides the subject; we call ``sign``, never ``sign-verbatim``. Every hvac/requests
exception is translated here into ``CaUnavailableError`` (502), ``InvalidCsrError``/``ValidationError``
(400) or ``NotFound``.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import hvac
import hvac.exceptions
import requests

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
    generate_ed25519_key,
    network_key,
)
from apps.pki.adapters.csr import validate_csr
from powernode.errors import ApplicationError, CaUnavailableError, InvalidCsrError, NotFound, ValidationError

T = TypeVar("T")

DEFAULT_MAX_TTL = "8760h"
# Overlay addresses are IPv6 ULAs; the server role refuses any other IP SAN even if asked.
DEFAULT_ALLOWED_IP_SANS_CIDR = ("fc00::/7",)
PLATFORM_POLICY = "powernode-platform"
CLIENT_MOUNT_PREFIX = "pki_clients"
CLIENT_CA_TTL = "43800h"


def client_role_name(role: str) -> str:
    return f"{role}-client"


def client_mount_name(network_id: str, prefix: str = CLIENT_MOUNT_PREFIX) -> str:
    """The PKI mount of a network's client CA: ``pki_clients/<network id as 32 hex digits>``."""
    return f"{prefix}/{network_key(network_id).replace('-', '')}"


@contextmanager
def vault_errors(action: str, *, csr: bool = False) -> Iterator[None]:
    """Translate hvac/requests exceptions into application errors at this edge."""
    try:
        yield
    except ApplicationError:
        raise
    except hvac.exceptions.InvalidRequest as exc:
        message = _vault_message(exc)
        if csr and "csr" in message.lower():
            raise InvalidCsrError(f"Vault refused the CSR: {message}", details={"check": "vault"}) from None
        raise CaUnavailableError(
            f"Vault refused to {action}: {message}", details={"vault_status": 400, "vault_error": message}
        ) from None
    except (hvac.exceptions.VaultError, requests.RequestException, OSError, ValueError) as exc:
        raise CaUnavailableError(
            f"Vault could not {action}: {_vault_message(exc)}",
            details={"vault_error": _vault_message(exc), "error_type": type(exc).__name__},
        ) from None


def _vault_message(exc: BaseException) -> str:
    errors = getattr(exc, "errors", None)
    if errors:
        return "; ".join(str(e) for e in errors)
    return str(exc) or type(exc).__name__


def _ttl(ttl: dt.timedelta) -> str:
    seconds = int(ttl.total_seconds())
    if seconds <= 0:
        raise ValidationError("ttl must be positive", details={"ttl_seconds": ttl.total_seconds()})
    return f"{seconds}s"


class VaultAuth:
    """Where the platform's Vault token comes from: a static token (VAULT_TOKEN), or an AppRole login
    (VAULT_ROLE_ID + VAULT_SECRET_ID) renewed before it expires.

    AppRole: log in; once two thirds of the token's TTL have passed, ``renew-self``; when Vault refuses the
    renewal (the token reached its max TTL, or was revoked) or grants less than a third of the login's TTL,
    log in again. Thread-safe; one per process, shared by the KV and CA adapters. ``token()`` raises the
    hvac/requests exception of a failed login: the adapters' own handlers translate it.
    """

    def __init__(
        self,
        url: str,
        *,
        token: str = "",
        role_id: str = "",
        secret_id: str = "",
        secret_id_file: str = "",
        mount: str = "approle",
        timeout: float = 10.0,
        verify: bool | str = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not token and not role_id:
            raise ValueError("VaultAuth needs a token or an AppRole role_id")
        self.url = url.rstrip("/")
        self.method = "approle" if role_id and not token else "static"
        self._static = token
        self.role_id = role_id
        self._secret_id = secret_id
        self.secret_id_file = secret_id_file
        self.mount = mount
        self.timeout = timeout
        self.verify = verify
        self._clock = clock
        self._lock = threading.Lock()
        self._token = ""
        self._login_ttl = 0.0
        self._renewable = False
        self._renew_at = self._expires_at = 0.0
        self.logins = self.renewals = 0  # counters for status and tests

    def token(self) -> str:
        if self.method == "static":
            return self._static
        with self._lock:
            now = self._clock()
            if self._token and now < self._renew_at:
                return self._token
            if self._token and self._renewable and now < self._expires_at and self._renew(now):
                return self._token
            self._login(now)
            return self._token

    def forget(self, token: str) -> None:
        """Vault refused ``token`` (revoked out of band): the next ``token()`` logs in again."""
        with self._lock:
            if self.method == "approle" and token == self._token:
                self._token = ""

    def again_if_refused(self, fn: Callable[[], T], current_token: Callable[[], str]) -> T:
        """Run ``fn``; when Vault answers 403 to an AppRole token (revoked out of band, or gone early), log in
        again and run it once more. A static token is the operator's to fix: its 403 stands."""
        try:
            return fn()
        except hvac.exceptions.Forbidden:
            if self.method != "approle":
                raise
            self.forget(current_token())
            return fn()

    def _client(self, token: str = "") -> hvac.Client:
        session = requests.Session()
        session.trust_env = False
        return hvac.Client(url=self.url, token=token or None, timeout=self.timeout, verify=self.verify, session=session)

    def _secret(self) -> str:
        if self.secret_id_file:  # read at each login, so a rotated secret_id is picked up without a restart
            with open(self.secret_id_file, encoding="utf-8") as f:
                return f.read().strip()
        return self._secret_id

    def _login(self, now: float) -> None:
        answer = self._client().auth.approle.login(
            role_id=self.role_id, secret_id=self._secret(), use_token=False, mount_point=self.mount
        )
        auth = answer["auth"]
        self._login_ttl = float(auth.get("lease_duration") or 0)
        self._set(auth, now)
        self.logins += 1

    def _renew(self, now: float) -> bool:
        try:
            auth = self._client(self._token).auth.token.renew_self()["auth"]
        except (hvac.exceptions.VaultError, requests.RequestException, OSError, ValueError, KeyError, TypeError):
            return False  # refused or unreachable: a login says which
        if float(auth.get("lease_duration") or 0) < self._login_ttl / 3:
            return False  # capped by the token's max TTL: a fresh login gives a full TTL
        self._set(auth, now)
        self.renewals += 1
        return True

    def _set(self, auth: dict[str, Any], now: float) -> None:
        ttl = float(auth.get("lease_duration") or 0)
        self._token = auth["client_token"]
        self._renewable = bool(auth.get("renewable"))
        if ttl <= 0:  # a token without expiry
            self._renew_at = self._expires_at = float("inf")
        else:
            self._expires_at = now + ttl
            self._renew_at = now + ttl * 2 / 3


class VaultCaAdapter(CaAdapter):
    """Talks to ``{url}/v1/{pki_mount}``; one hvac client (and HTTP keep-alive session) per thread."""

    name = "VaultCaAdapter"

    def __init__(
        self,
        url: str,
        token: str = "",
        *,
        pki_mount: str = "pki_int",
        role: str = "node",
        root_mount: str = "pki",
        client_mount_prefix: str = CLIENT_MOUNT_PREFIX,
        timeout: float = 10.0,
        verify: bool | str = True,
        auth: VaultAuth | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.auth = auth or VaultAuth(url, token=token, timeout=timeout, verify=verify)
        self.pki_mount = pki_mount
        self.role = role
        self.root_mount = root_mount
        self.timeout = timeout
        self.verify = verify
        self.client_mount_prefix = client_mount_prefix
        self._local = threading.local()
        self._client_mounts_ready: set[str] = set()  # client CA mounts seen complete by this process

    @property
    def client(self) -> hvac.Client:
        # requests.Session is not thread-safe; one per thread still reuses its connection.
        client = getattr(self._local, "client", None)
        if client is None:
            session = requests.Session()
            # Only the CA bundle given here applies, not REQUESTS_CA_BUNDLE or proxy variables.
            session.trust_env = False
            client = hvac.Client(url=self.url, timeout=self.timeout, verify=self.verify, session=session)
            self._local.client = client
        client.token = self.auth.token()  # a static token, or the AppRole token (renewed or logged in again)
        return client

    def _call(self, action: str, fn: Callable[[], T], *, csr: bool = False) -> T:
        with vault_errors(action, csr=csr):
            return self.auth.again_if_refused(fn, lambda: self.client.token)

    # -- the networks' client CAs ------------------------------------------------------------
    def _client_mount(self, network_id: str) -> str:
        """The network's client CA mount, made (mount, intermediate signed by the root, role) when missing."""
        mount = client_mount_name(network_id, self.client_mount_prefix)
        if mount not in self._client_mounts_ready:
            with vault_errors(f"make the client CA of network {network_id}"):
                client_ca_ensure(
                    self.client, mount=mount, network_id=network_id, root_mount=self.root_mount, role=self.role
                )
            self._client_mounts_ready.add(mount)
        return mount

    def client_ca_pem(self, *, network_id: str) -> str:
        mount = self._client_mount(client_network("client", network_id) or "")
        pem = self._call(
            "read the network's client CA", lambda: self.client.secrets.pki.read_ca_certificate(mount_point=mount)
        )
        if not pem or "BEGIN CERTIFICATE" not in pem:
            raise CaUnavailableError(f"Vault mount {mount} has no CA.", details={"pki_mount": mount})
        return pem.strip() + "\n"

    # -- signing ----------------------------------------------------------------------------
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
        validate_csr(csr_pem)
        if usage not in USAGES:
            raise ValidationError(f"usage must be one of {', '.join(USAGES)}", details={"usage": usage})
        network = client_network(usage, network_id)
        if not common_name or len(common_name) > 64:
            raise ValidationError(
                "common_name must be 1 to 64 characters", details={"common_name": common_name}
            )
        role = self.role if usage == "server" else client_role_name(self.role)
        mount = self.pki_mount if network is None else self._client_mount(network)
        # hvac writes into extra_params, so a fresh dict per call (see NOTES.md).
        params: dict[str, Any] = {
            "ttl": _ttl(ttl),
            "format": "pem",
            "exclude_cn_from_sans": True,  # else Vault adds the CN as a DNS SAN
        }
        if ip_sans:
            params["ip_sans"] = ",".join(ip_sans)
        csr_text = csr_pem.decode() if isinstance(csr_pem, bytes) else csr_pem
        response = self._call(
            "sign the certificate",
            lambda: self.client.secrets.pki.sign_certificate(
                name=role,
                csr=csr_text,
                common_name=common_name,
                extra_params=params,
                mount_point=mount,
            ),
            csr=True,
        )
        data = response["data"]
        chain = "\n".join(pem.strip() for pem in data.get("ca_chain") or [data["issuing_ca"]]) + "\n"
        return SignedCertificate.from_pem(data["certificate"].strip() + "\n", chain)

    def issue_keypair(
        self, *, common_name: str, usage: Usage = "client", ttl: dt.timedelta, network_id: str | None = None
    ) -> IssuedKeypair:
        # The key is made here and only its CSR goes to Vault, so Vault never holds a private key.
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization
        from cryptography.x509.oid import NameOID

        key, key_pem = generate_ed25519_key()
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64] or "client")]))
            .sign(key, None)
            .public_bytes(serialization.Encoding.PEM)
            .decode()
        )
        signed = self.sign_csr(
            csr_pem=csr, common_name=common_name, ip_sans=[], usage=usage, ttl=ttl, network_id=network_id
        )
        return IssuedKeypair(**signed.__dict__, key_pem=key_pem)

    # -- revocation -------------------------------------------------------------------------
    def revoke(self, *, serial: str, cert_pem: str | None = None) -> dt.datetime:
        try:
            canonical = canonical_serial(serial)  # Vault wants colon hex; plain hex is "not found"
        except ValueError:
            raise ValidationError(
                "serial must be hex (colon, hyphen or plain)", details={"serial": serial}
            ) from None
        mount = self.pki_mount
        network = _issuer_network(cert_pem)
        if network is not None:  # issued by a network's client CA: revoke on its mount
            mount = client_mount_name(network, self.client_mount_prefix)
        with vault_errors("revoke the certificate"):
            try:
                response = self.client.secrets.pki.revoke_certificate(
                    serial_number=canonical, mount_point=mount
                )
            except hvac.exceptions.InvalidRequest as exc:
                if "not found" in _vault_message(exc).lower():
                    raise NotFound(
                        f"This CA never issued serial {canonical}.", details={"serial": canonical}
                    ) from None
                raise
        seconds = (response.get("data") or {}).get("revocation_time") or 0
        return dt.datetime.fromtimestamp(seconds, tz=dt.UTC) if seconds else dt.datetime.now(dt.UTC)

    # -- publication ------------------------------------------------------------------------
    def ca_chain_pem(self) -> str:
        text = self._call(
            "read the CA chain",
            lambda: self.client.secrets.pki.read_ca_certificate_chain(mount_point=self.pki_mount),
        )
        if not text or "BEGIN CERTIFICATE" not in text:
            raise CaUnavailableError(
                f"Vault mount {self.pki_mount} has no CA: run `python manage.py pki_bootstrap_vault`.",
                details={"pki_mount": self.pki_mount},
            )
        return text.strip() + "\n"

    def crl_pem(self) -> str:
        text = self._call(
            "read the CRL", lambda: self.client.secrets.pki.read_crl(mount_point=self.pki_mount)
        )
        if not isinstance(text, str) or "BEGIN X509 CRL" not in text:
            raise CaUnavailableError(
                f"Vault mount {self.pki_mount} returned no CRL.", details={"pki_mount": self.pki_mount}
            )
        return text.strip() + "\n"

    def status(self) -> CaStatus:
        details: dict[str, Any] = {
            "url": self.url,
            "pki_mount": self.pki_mount,
            "role": self.role,
            "root_mount": self.root_mount,
        }
        try:
            health = self.client.sys.read_health_status(method="GET")
            if not isinstance(health, dict):  # hvac returns the raw response for 429/5xx health codes
                health = health.json()
        except (hvac.exceptions.VaultError, requests.RequestException, OSError, ValueError) as exc:
            details["error"] = _vault_message(exc)
            return CaStatus(adapter=self.name, reachable=False, details=details)
        details.update(
            version=health.get("version"), sealed=health.get("sealed"), initialized=health.get("initialized")
        )
        if health.get("sealed") or not health.get("initialized"):
            details["error"] = "Vault is sealed or not initialised"
            return CaStatus(adapter=self.name, reachable=False, details=details)
        try:
            self.client.auth.token.lookup_self()
            details["token_valid"] = True
        except hvac.exceptions.Forbidden:
            details["token_valid"] = False
            details["error"] = (
                "Vault rejected the platform's token (VAULT_TOKEN)"
                if self.auth.method == "static"
                else "Vault rejected the platform's AppRole token"
            )
        except (hvac.exceptions.VaultError, requests.RequestException, OSError, ValueError) as exc:
            details["token_valid"] = None
            details["error"] = _vault_message(exc)
        details["mounts"] = {
            self.pki_mount: self._has_ca(self.pki_mount),
            self.root_mount: self._has_ca(self.root_mount),
        }
        details["roles"] = {r: self._has_role(r) for r in (self.role, client_role_name(self.role))}
        details["ready"] = (
            bool(details["token_valid"])
            and bool(details["mounts"][self.pki_mount])
            and all(details["roles"].values())
        )
        return CaStatus(adapter=self.name, reachable=True, details=details)

    def ready(self) -> str:
        """Two requests, not ``status``'s six: unsealed and initialised, and our token accepted."""
        try:
            health = self.client.sys.read_health_status(method="GET")
            if not isinstance(health, dict):  # hvac returns the raw response for 429/5xx health codes
                health = health.json()
            if health.get("sealed") or not health.get("initialized"):
                return "Vault is sealed or not initialised"
            self.client.auth.token.lookup_self()
        except hvac.exceptions.Forbidden:
            return "Vault rejected the platform's token"
        except (hvac.exceptions.VaultError, requests.RequestException, OSError, ValueError) as exc:
            return f"Vault does not answer: {_vault_message(exc)}"
        return ""

    def _has_ca(self, mount: str) -> bool | None:
        """True/False when known; None when the answer is hidden (e.g. the token may not read it)."""
        try:
            pem = self.client.secrets.pki.read_ca_certificate(mount_point=mount)
            return "BEGIN CERTIFICATE" in (pem or "")
        except hvac.exceptions.InvalidPath:
            return False
        except (hvac.exceptions.VaultError, requests.RequestException, OSError, ValueError):
            return None

    def _has_role(self, role: str) -> bool | None:
        try:
            self.client.secrets.pki.read_role(role, mount_point=self.pki_mount)
            return True
        except hvac.exceptions.InvalidPath:
            return False
        except (hvac.exceptions.VaultError, requests.RequestException, OSError, ValueError):
            return None


def _issuer_network(cert_pem: str | None) -> str | None:
    if not cert_pem:
        return None
    from cryptography import x509

    try:
        return client_ca_network(x509.load_pem_x509_certificate(cert_pem.encode()))
    except ValueError:
        return None


def _read_ca(client: hvac.Client, mount: str) -> str:
    try:
        return client.secrets.pki.read_ca_certificate(mount_point=mount) or ""
    except hvac.exceptions.InvalidPath:  # no such mount yet
        return ""


def client_ca_ensure(
    client: hvac.Client,
    *,
    mount: str,
    network_id: str,
    root_mount: str = "pki",
    role: str = "node",
    max_ttl: str = DEFAULT_MAX_TTL,
) -> bool:
    """Make a network's client CA mount when it has no CA: an Ed25519 intermediate signed by the root,
    imported with the root (so chains end at it), leaves truncated to its life, the client role.

    Returns True when it made the CA. An existing CA is never replaced; its role is (re)written only when
    missing. Raises hvac errors (callers translate them with ``vault_errors``).
    """
    role_name = client_role_name(role)
    if "BEGIN CERTIFICATE" in _read_ca(client, mount):
        try:
            client.secrets.pki.read_role(role_name, mount_point=mount)
            return False
        except hvac.exceptions.InvalidPath:
            pass
        made = False
    else:
        try:
            client.sys.enable_secrets_engine("pki", path=mount, config={"max_lease_ttl": CLIENT_CA_TTL})
        except hvac.exceptions.InvalidRequest as exc:
            if "already in use" not in _vault_message(exc):  # made by a concurrent call
                raise
        root_pem = client.secrets.pki.read_ca_certificate(mount_point=root_mount) or ""
        name = client_ca_common_name(network_id)
        csr = client.secrets.pki.generate_intermediate(
            "internal", name, extra_params={"key_type": "ed25519"}, mount_point=mount
        )["data"]["csr"]
        signed = client.secrets.pki.sign_intermediate(
            csr,
            name,
            extra_params={"ttl": CLIENT_CA_TTL, "format": "pem", "max_path_length": 0},
            mount_point=root_mount,
        )["data"]["certificate"]
        client.secrets.pki.set_signed_intermediate(
            signed.strip() + "\n" + root_pem.strip() + "\n", mount_point=mount
        )
        client.adapter.request(
            "patch",
            f"/v1/{mount}/issuer/default",
            json={"leaf_not_after_behavior": "truncate"},
            headers={"Content-Type": "application/merge-patch+json"},
        )
        made = True
    params = _role_params(server=False, max_ttl=max_ttl, allowed_ip_sans_cidr=())
    client.secrets.pki.create_or_update_role(role_name, extra_params=params, mount_point=mount)
    return made


def _role_params(*, server: bool, max_ttl: str, allowed_ip_sans_cidr: tuple[str, ...]) -> dict[str, Any]:
    params: dict[str, Any] = {
        # The platform passes CN and IP SANs; whatever the CSR asks is ignored.
        "use_csr_common_name": False,
        "use_csr_sans": False,
        # CNs are platform-made ids (host-<uuid>, operator:<name>), not DNS names.
        "allow_any_name": True,
        "enforce_hostnames": False,
        "cn_validations": ["disabled"],
        "allow_localhost": False,
        "allow_wildcard_certificates": False,
        "allow_ip_sans": server,
        "allowed_uri_sans": [],
        "allowed_other_sans": [],
        "key_type": "any",  # Ed25519 CSRs (and ECDSA P-256); "rsa" would refuse them
        "key_usage": ["DigitalSignature"],
        "ext_key_usage": [],
        "server_flag": server,
        "client_flag": not server,
        "code_signing_flag": False,
        "email_protection_flag": False,
        "max_ttl": max_ttl,
        "not_before_duration": "30s",
        "require_cn": True,
        "basic_constraints_valid_for_non_ca": True,  # leaves say CA:FALSE explicitly
        "no_store": False,  # revocation needs Vault to keep the issued certificates
        "generate_lease": False,
    }
    if server:
        params["allowed_ip_sans_cidr"] = list(allowed_ip_sans_cidr)
    return params


PLATFORM_POLICY_HCL = """
# powernode platform token: sign through the constrained roles only; never sign-verbatim.
path "{pki}/sign/{role}" {{ capabilities = ["create", "update"] }}
path "{pki}/sign/{role}-client" {{ capabilities = ["create", "update"] }}
path "{pki}/sign-verbatim" {{ capabilities = ["deny"] }}
path "{pki}/sign-verbatim/*" {{ capabilities = ["deny"] }}
path "{pki}/issue/*" {{ capabilities = ["deny"] }}
path "{pki}/revoke" {{ capabilities = ["create", "update"] }}
path "{pki}/roles/{role}" {{ capabilities = ["read"] }}
path "{pki}/roles/{role}-client" {{ capabilities = ["read"] }}
path "{pki}/cert/*" {{ capabilities = ["read"] }}
path "{pki}/ca_chain" {{ capabilities = ["read"] }}
path "{pki}/crl" {{ capabilities = ["read"] }}
path "{root}/cert/ca" {{ capabilities = ["read"] }}
# The networks' client CAs (one mount each): sign client certificates, revoke, read; never sign-verbatim.
path "{clients}/+/sign/{role}-client" {{ capabilities = ["create", "update"] }}
path "{clients}/+/revoke" {{ capabilities = ["create", "update"] }}
path "{clients}/+/roles/{role}-client" {{ capabilities = ["create", "update", "read"] }}
path "{clients}/+/cert/*" {{ capabilities = ["read"] }}
path "{clients}/+/ca_chain" {{ capabilities = ["read"] }}
path "{clients}/+/ca/pem" {{ capabilities = ["read"] }}
# Making a new network's client CA on first use: its mount, its intermediate (signed by the root).
path "sys/mounts/{clients}/*" {{ capabilities = ["create", "update", "read"] }}
path "{clients}/+/intermediate/generate/internal" {{ capabilities = ["create", "update"] }}
path "{clients}/+/intermediate/set-signed" {{ capabilities = ["create", "update"] }}
path "{clients}/+/issuer/default" {{ capabilities = ["patch", "update"] }}
path "{root}/ca/pem" {{ capabilities = ["read"] }}
path "{root}/root/sign-intermediate" {{ capabilities = ["create", "update"] }}
path "{kv}/data/powernode/*" {{ capabilities = ["create", "update", "read"] }}
# delete on metadata: a decommission destroys every version and the metadata of the host's secret
# (kv.v2 delete_metadata_and_all_versions = DELETE {kv}/metadata/<path>); without it that is a 403.
path "{kv}/metadata/powernode/*" {{ capabilities = ["read", "list", "delete"] }}
"""


def _has_roles(client: hvac.Client, mount: str) -> bool:
    try:
        client.secrets.pki.list_roles(mount_point=mount)
        return True
    except hvac.exceptions.InvalidPath:  # LIST answers 404 while a mount has no roles
        return False


def bootstrap(
    *,
    url: str,
    token: str,
    pki_mount: str = "pki_int",
    role: str = "node",
    root_mount: str = "pki",
    kv_mount: str = "secret",
    root_common_name: str = "powernode root CA",
    intermediate_common_name: str = "powernode intermediate CA",
    max_ttl: str = DEFAULT_MAX_TTL,
    allowed_ip_sans_cidr: tuple[str, ...] = DEFAULT_ALLOWED_IP_SANS_CIDR,
    timeout: float = 30.0,
    network_ids: tuple[str, ...] = (),
    client_mount_prefix: str = CLIENT_MOUNT_PREFIX,
) -> dict[str, Any]:
    """Set up root mount, intermediate mount (signed by the root), roles and the platform policy.

    Idempotent: existing mounts and CAs are kept (never regenerated); roles and the policy are
    rewritten to the values above each time. ``network_ids``: the SDWAN networks whose client CA
    (``pki_clients/<id>``) is made now rather than on first use. Returns what was created and what already existed.
    Needs a token allowed to manage mounts and policies (the root token on a fresh server).
    """
    session = requests.Session()
    session.trust_env = False
    client = hvac.Client(url=url.rstrip("/"), token=token, timeout=timeout, session=session)
    report: dict[str, Any] = {"created": [], "present": []}
    with vault_errors("bootstrap the PKI"):
        mounts = client.sys.list_mounted_secrets_engines()
        mounts = mounts.get("data", mounts)
        for mount, max_lease in ((root_mount, "87600h"), (pki_mount, "43800h")):
            if f"{mount}/" in mounts:
                if mounts[f"{mount}/"].get("type") != "pki":
                    raise CaUnavailableError(f"Vault mount {mount}/ exists but is not a PKI engine.")
                report["present"].append(f"mount:{mount}")
            else:
                client.sys.enable_secrets_engine("pki", path=mount, config={"max_lease_ttl": max_lease})
                report["created"].append(f"mount:{mount}")

        root_pem = client.secrets.pki.read_ca_certificate(mount_point=root_mount) or ""
        if "BEGIN CERTIFICATE" in root_pem:
            report["present"].append(f"root:{root_mount}")
        else:
            response = client.secrets.pki.generate_root(
                "internal",
                root_common_name,
                extra_params={"key_type": "ed25519", "ttl": "87600h"},
                mount_point=root_mount,
            )
            root_pem = response["data"]["certificate"]
            report["created"].append(f"root:{root_mount}")

        int_pem = client.secrets.pki.read_ca_certificate(mount_point=pki_mount) or ""
        if "BEGIN CERTIFICATE" in int_pem:
            report["present"].append(f"intermediate:{pki_mount}")
        else:
            csr = client.secrets.pki.generate_intermediate(
                "internal",
                intermediate_common_name,
                extra_params={"key_type": "ed25519"},
                mount_point=pki_mount,
            )["data"]["csr"]
            signed = client.secrets.pki.sign_intermediate(
                csr,
                intermediate_common_name,
                extra_params={"ttl": "43800h", "format": "pem", "max_path_length": 0},
                mount_point=root_mount,
            )["data"]["certificate"]
            # Importing the root with it makes ca_chain (and every sign response) carry the full chain.
            client.secrets.pki.set_signed_intermediate(
                signed.strip() + "\n" + root_pem.strip() + "\n", mount_point=pki_mount
            )
            report["created"].append(f"intermediate:{pki_mount}")
        # A leaf never outlives its issuer: cap it, as the local CA does, instead of failing.
        client.adapter.request(
            "patch",
            f"/v1/{pki_mount}/issuer/default",
            json={"leaf_not_after_behavior": "truncate"},
            headers={"Content-Type": "application/merge-patch+json"},
        )

        existing_roles = (
            client.secrets.pki.list_roles(mount_point=pki_mount)
            if _has_roles(client, pki_mount)
            else {"data": {"keys": []}}
        )["data"]["keys"]
        for name, server in ((role, True), (client_role_name(role), False)):
            params = _role_params(server=server, max_ttl=max_ttl, allowed_ip_sans_cidr=allowed_ip_sans_cidr)
            # A role write replaces every field, so the full parameter set goes every time.
            client.secrets.pki.create_or_update_role(name, extra_params=params, mount_point=pki_mount)
            report["present" if name in existing_roles else "created"].append(f"role:{name}")

        for network_id in network_ids:
            mount = client_mount_name(network_id, client_mount_prefix)
            made = client_ca_ensure(
                client, mount=mount, network_id=network_id, root_mount=root_mount, role=role, max_ttl=max_ttl
            )
            report["created" if made else "present"].append(f"client_ca:{mount}")

        policy = PLATFORM_POLICY_HCL.format(
            pki=pki_mount, role=role, root=root_mount, kv=kv_mount, clients=client_mount_prefix
        )
        client.sys.create_or_update_policy(PLATFORM_POLICY, policy)
        report["policy"] = PLATFORM_POLICY
    return report


def approle_bootstrap(
    *,
    url: str,
    token: str,
    role_name: str = PLATFORM_POLICY,
    mount: str = "approle",
    token_ttl: str = "1h",
    token_max_ttl: str = "24h",
    new_secret_id: bool = False,
    timeout: float = 30.0,
) -> dict[str, Any]:
    """Enable the AppRole auth method at ``mount`` (when missing) and write the platform's role: tokens with
    only the platform policy, ``token_ttl`` (renewed by the platform) up to ``token_max_ttl`` (then it logs in
    again). Returns ``role_id``, what was created, and a fresh ``secret_id`` when ``new_secret_id``.
    Idempotent: the role is rewritten, its role_id kept. Needs a token allowed to manage auth methods."""
    session = requests.Session()
    session.trust_env = False
    client = hvac.Client(url=url.rstrip("/"), token=token, timeout=timeout, session=session)
    report: dict[str, Any] = {"created": [], "present": []}
    with vault_errors("set up the platform's AppRole"):
        methods = client.sys.list_auth_methods()
        methods = methods.get("data", methods)
        role_existed = False
        if f"{mount}/" in methods:
            report["present"].append(f"auth:{mount}")
            try:
                client.auth.approle.read_role_id(role_name, mount_point=mount)
                role_existed = True
            except hvac.exceptions.InvalidPath:
                pass
        else:
            client.sys.enable_auth_method("approle", path=mount)
            report["created"].append(f"auth:{mount}")
        client.auth.approle.create_or_update_approle(
            role_name,
            token_policies=[PLATFORM_POLICY],
            token_ttl=token_ttl,
            token_max_ttl=token_max_ttl,
            token_type="service",  # renewable
            mount_point=mount,
        )
        report["present" if role_existed else "created"].append(f"approle:{role_name}")
        report["role_id"] = client.auth.approle.read_role_id(role_name, mount_point=mount)["data"]["role_id"]
        if new_secret_id:
            report["secret_id"] = client.auth.approle.generate_secret_id(role_name, mount_point=mount)["data"][
                "secret_id"
            ]
    return report
