"""The docker runtime handshake walker: installing -> wants_cert -> wants_config -> ready, resumable.

Each completed step is written to the state directory before the next one starts, so an agent restarted
mid-handshake resumes where it stopped; re-posting a phase is safe because the platform's phase machine is
stateless. Decommission (stop, remove, confirm) lives here too: it is the protocol's last phase.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import NameOID

from . import state as st
from .docker_runtime import DockerRuntime, parse_tcp_host
from .platform_api import AgentApiError, PlatformClient

log = logging.getLogger(__name__)

# Local steps in order; all but "configured" are also protocol phases.
STEPS = ("none", "installing", "wants_cert", "wants_config", "configured", "ready")


class HandshakeFailed(Exception):
    """The walk stopped on an error; ``failed`` was posted (when the platform could be reached)."""


def generate_key_pem() -> bytes:
    """A new Ed25519 private key (PKCS#8 PEM). It stays on this node."""
    key = ed25519.Ed25519PrivateKey.generate()
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def build_csr_pem(key_pem: bytes, common_name: str) -> str:
    """CSR signed by the Ed25519 key, CN = instance id (the platform sets CN and SAN itself anyway)."""
    key = serialization.load_pem_private_key(key_pem, password=None)
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise TypeError("the docker key in the state directory is not Ed25519")
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .sign(key, None)
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def step_index(step: str | None) -> int:
    return STEPS.index(step) if step in STEPS else 0


def runtime_report(store: st.StateStore) -> dict[str, Any]:
    """What the heartbeat says about the docker runtime: the last phase posted, and the version when ready."""
    data = store.load()
    report: dict[str, Any] = {"phase": data.get("docker_phase", "none")}
    if report["phase"] == "ready" and data.get("docker_version"):
        report["version"] = data["docker_version"]
    return report


class HandshakeWalker:
    """Walks the phases for one instance, persisting progress after each step."""

    def __init__(
        self,
        client: PlatformClient,
        runtime: DockerRuntime,
        store: st.StateStore,
        *,
        instance_id: str,
        overlay_addresses: Iterable[str] | None = None,
    ) -> None:
        self.client = client
        self.runtime = runtime
        self.store = store
        self.instance_id = instance_id
        self.overlay_addresses = None if overlay_addresses is None else list(overlay_addresses)

    def _step(self) -> int:
        return step_index(self.store.load().get("docker_step"))

    def _done(self, step: str, **extra: Any) -> None:
        phase = step if step != "configured" else "wants_config"
        self.store.update(docker_step=step, docker_phase=phase, docker_error=None, **extra)

    def walk(self) -> str:
        """Run every step not yet done; returns the engine version once ``ready`` is posted."""
        self.store.ensure()
        current = "none"
        try:
            if self._step() < step_index("installing"):
                current = "installing"
                self._installing()
            if self._step() < step_index("wants_cert"):
                current = "wants_cert"
                self._wants_cert()
            if self._step() < step_index("wants_config"):
                current = "wants_config"
                self._wants_config()
            if self._step() < step_index("configured"):
                current = "configure"
                self._configure()
            if self._step() < step_index("ready"):
                current = "start"
                return self._start_and_ready()
            return str(self.store.load().get("docker_version", ""))
        except Exception as exc:
            self._fail(current, exc)
            raise HandshakeFailed(f"{current}: {exc}") from exc

    def restart_daemon(self) -> str:
        """dockerd died after ``ready``: start it again and re-post ``ready``."""
        data = self.store.load()
        if step_index(data.get("docker_step")) >= step_index("configured"):
            self.store.update(docker_step="configured")
        return self.walk()

    def renew(self) -> str:
        """Answer a ``renew`` order (DESIGN §4 "Renewal"): a new key and CSR, ``wants_cert`` with
        ``renew: true`` (the host stays connected), the new certificate written, dockerd restarted with it
        (``live-restore``: containers keep running), ``ready`` posted again (the platform then revokes the
        old serial). A refused renewal changes nothing here: the daemon keeps its current certificate."""
        self.store.ensure()
        if step_index(self.store.load().get("docker_step")) < step_index("ready"):
            raise HandshakeFailed("renew: the docker runtime is not ready here; provisioning comes first")
        key_pem = self.store.read(st.DOCKER_RENEW_KEY)
        if key_pem is None:
            # Saved before posting, like the first key: a crash after the post reuses it.
            key_pem = generate_key_pem()
            self.store.write(st.DOCKER_RENEW_KEY, key_pem)
        try:
            answer = self.client.handshake(
                "wants_cert", csr_pem=build_csr_pem(key_pem, self.instance_id), renew=True
            )
            cert_pem, chain_pem, client_ca = self._check_cert_answer(answer)
        except Exception as exc:
            log.error("renew: wants_cert refused: %s", exc)
            raise HandshakeFailed(f"renew: {exc}") from exc
        # From here the daemon must move to the new certificate: the walk restarts it and posts ready.
        self.store.write(st.DOCKER_KEY, key_pem)
        self._store_cert(cert_pem, chain_pem, client_ca)
        self.store.remove(st.DOCKER_RENEW_KEY)
        self.store.update(docker_step="wants_cert", docker_renewing=True, host_id=answer["host_id"])
        log.info("renew: new certificate for %s; restarting dockerd with it", answer["host_id"])
        return self.walk()

    # steps
    def _installing(self) -> None:
        self.client.handshake("installing")
        log.info("handshake: posted installing")
        if self.runtime.ensure_installed():
            log.info("handshake: dockerd installed")
        self._done("installing")

    def _wants_cert(self) -> None:
        key_pem = self.store.read(st.DOCKER_KEY)
        if key_pem is None:
            # Saved before posting: a crash after the post reuses this key instead of orphaning a cert.
            key_pem = generate_key_pem()
            self.store.write(st.DOCKER_KEY, key_pem)
        answer = self.client.handshake("wants_cert", csr_pem=build_csr_pem(key_pem, self.instance_id))
        self._store_cert(*self._check_cert_answer(answer))
        self._done("wants_cert", host_id=answer["host_id"])
        log.info("handshake: posted wants_cert, got a certificate for %s", answer["host_id"])

    @staticmethod
    def _check_cert_answer(answer: dict[str, Any]) -> tuple[str, str, str | None]:
        """(cert, chain, client CA or None) of a wants_cert answer, or BadPlatformAnswer."""
        for field in ("host_id", "cert_pem", "chain_pem"):
            if not isinstance(answer.get(field), str) or not answer[field]:
                raise AgentApiError("BadPlatformAnswer", f"wants_cert answer lacks {field}")
        x509.load_pem_x509_certificate(answer["cert_pem"].encode())
        client_ca = answer.get("client_ca_pem")
        if client_ca is not None and (not isinstance(client_ca, str) or not client_ca):
            raise AgentApiError("BadPlatformAnswer", "wants_cert answer has an empty client_ca_pem")
        if client_ca:
            x509.load_pem_x509_certificate(client_ca.encode())
        return answer["cert_pem"], answer["chain_pem"], client_ca

    def _store_cert(self, cert_pem: str, chain_pem: str, client_ca: str | None) -> None:
        self.store.write(st.DOCKER_CERT, cert_pem)
        self.store.write(st.DOCKER_CHAIN, chain_pem)
        if client_ca:
            # dockerd will trust only the network's client CA, not the whole chain.
            self.store.write(st.DOCKER_CLIENT_CA, client_ca)
        else:  # a platform without per-network client CAs: the chain is the client CA, as before
            self.store.remove(st.DOCKER_CLIENT_CA)

    def _wants_config(self) -> None:
        answer = self.client.handshake("wants_config")
        config = answer.get("daemon_config")
        if not isinstance(config, dict):
            raise AgentApiError("BadPlatformAnswer", "wants_config answer lacks daemon_config")
        self.store.write(st.DAEMON_CONFIG, json.dumps(config))
        extra = {"host_id": answer["host_id"]} if answer.get("host_id") else {}
        self._done("wants_config", **extra)
        log.info("handshake: posted wants_config, got daemon_config for %s", config.get("hosts"))

    def _configure(self) -> None:
        key_pem, cert_pem, chain_pem = (
            self.store.read(n) for n in (st.DOCKER_KEY, st.DOCKER_CERT, st.DOCKER_CHAIN)
        )
        raw_config = self.store.read(st.DAEMON_CONFIG)
        if key_pem is None or cert_pem is None or chain_pem is None or raw_config is None:
            # Someone removed files under us: start over from the certificate.
            self.store.update(docker_step="installing")
            raise RuntimeError("TLS material or daemon_config missing from the state directory")
        self.runtime.write_tls(
            key_pem=key_pem,
            cert_pem=cert_pem,
            chain_pem=chain_pem,
            client_ca_pem=self.store.read(st.DOCKER_CLIENT_CA),
        )
        self.runtime.write_daemon_json(json.loads(raw_config))
        self.runtime.validate(allowed_addresses=self.overlay_addresses)
        self._done("configured")

    def _start_and_ready(self) -> str:
        config = json.loads(self.store.read(st.DAEMON_CONFIG) or b"{}")
        address, _port = parse_tcp_host((config.get("hosts") or [""])[0])
        chain_pem = (self.store.read(st.DOCKER_CHAIN) or b"").decode()
        if self.store.load().get("docker_renewing") and self.runtime.is_running():
            # A renewal wrote new TLS files: the running dockerd must load them before ready is posted
            # (ready revokes the old serial). live-restore in daemon.json keeps the containers running.
            log.info("renew: restarting dockerd with the new certificate (live-restore keeps containers)")
            self.runtime.restart_keeping_containers()
        else:
            self.runtime.start()
        try:
            version = self.runtime.wait_ready(str(address), chain_pem)
        except Exception:
            # A daemon that never became reachable the right way must not keep running half-configured.
            self.runtime.stop()
            raise
        # Which certificate dockerd now serves: after a renewal interrupted before the new files were written,
        # it is the old one, and the platform must not revoke it (it keeps ordering renew instead).
        answer = self.client.handshake("ready", version=version, **self._cert_serial())
        extra = {"host_id": answer["host_id"]} if answer.get("host_id") else {}
        if answer.get("status") not in (None, "connected"):
            # The platform's own probe of the daemon (mTLS through the overlay) did not get through: the
            # host stays pending. dockerd keeps running; the next provision order posts ready again.
            self.store.update(docker_step="configured", docker_phase="ready", docker_version=version, **extra)
            log.warning(
                "handshake: posted ready, but the platform left the host %s: %s",
                answer.get("status"),
                answer.get("error") or "no reason given",
            )
            return version
        self._done("ready", docker_version=version, docker_renewing=False, **extra)
        log.info("handshake: posted ready (engine %s)", version)
        return version

    def _cert_serial(self) -> dict[str, str]:
        """``{"cert_serial": "0a:1b:..."}`` of the certificate in the state directory (what dockerd was
        started with), or nothing when it cannot be read."""
        cert_pem = self.store.read(st.DOCKER_CERT)
        if cert_pem is None:
            return {}
        try:
            serial = x509.load_pem_x509_certificate(cert_pem).serial_number
        except ValueError:
            return {}
        text = format(serial, "x")
        text = text.zfill(len(text) + len(text) % 2)
        return {"cert_serial": ":".join(text[i : i + 2] for i in range(0, len(text), 2))}

    def _fail(self, step: str, exc: Exception) -> None:
        message = f"{step}: {exc}"
        log.error("handshake: %s failed: %s", step, exc)
        data = self.store.load()
        if step_index(data.get("docker_step")) >= step_index("wants_config"):
            # Fetch daemon_config again on the retry: the platform may have fixed what broke.
            data["docker_step"] = "wants_cert"
        data.update(docker_phase="failed", docker_error=message[:2000])
        self.store.save(data)
        try:
            self.client.handshake("failed", error=message[:2000])
            log.info("handshake: posted failed")
        except AgentApiError as post_exc:
            log.error("handshake: could not post failed: %s", post_exc)


def decommission(
    client: PlatformClient, runtime: DockerRuntime, store: st.StateStore, *, host_id: str | None
) -> None:
    """Stop dockerd, remove key, cert, chain and daemon.json, then confirm with phase ``decommissioned``.

    Safe to repeat: the platform keeps ordering decommission until it has the confirmation.
    """
    data = store.load()
    host_id = host_id or data.get("host_id")
    runtime.stop()
    removed = runtime.remove_files()
    log.info("decommission: dockerd stopped, removed %d files", len(removed))
    store.update(docker_step="none", docker_version=None)
    try:
        client.handshake("decommissioned", host_id=host_id)
    except AgentApiError as exc:
        if not exc.is_conflict:
            raise
        # 409: the platform already has this host as decommissioned (our earlier confirmation got through).
        log.info("decommission: platform already had %s decommissioned (%s)", host_id, exc.message)
    store.update(
        docker_phase="decommissioned", host_id=None, docker_error=None, decommissioned_host_id=host_id
    )
    log.info("decommission: posted decommissioned for %s", host_id)
