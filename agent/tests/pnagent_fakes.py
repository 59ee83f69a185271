"""Test doubles for the agent's tests: a throwaway Ed25519 CA, a fake platform, a fake docker runtime.

Kept out of conftest.py (whose module name is shared with the platform's conftest) so tests can import them.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import shutil
import socket
import threading
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from powernode_agent.config import AgentConfig
from powernode_agent.docker_runtime import DockerRuntime
from powernode_agent.state import StateStore


def _pem_key(key: ed25519.Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


class TestCa:
    """An Ed25519 root CA that signs server and client certificates, like the platform's LocalCaAdapter."""

    __test__ = False

    def __init__(self, name: str = "powernode test CA") -> None:
        self.key = ed25519.Ed25519PrivateKey.generate()
        now = datetime.datetime.now(datetime.UTC)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
            )
            .sign(self.key, None)
        )
        self.pem = self.cert.public_bytes(serialization.Encoding.PEM)

    def sign(self, public_key: Any, *, cn: str, ips: tuple[str, ...] = (), client: bool = False) -> bytes:
        now = datetime.datetime.now(datetime.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(self.cert.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=2))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH]
                ),
                critical=False,
            )
        )
        if ips:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]),
                critical=False,
            )
        return builder.sign(self.key, None).public_bytes(serialization.Encoding.PEM)

    def server_keypair(self, ip: str, cn: str = "host-test") -> tuple[bytes, bytes]:
        key = ed25519.Ed25519PrivateKey.generate()
        return _pem_key(key), self.sign(key.public_key(), cn=cn, ips=(ip,))

    def client_keypair(self, cn: str = "operator") -> tuple[bytes, bytes]:
        key = ed25519.Ed25519PrivateKey.generate()
        return _pem_key(key), self.sign(key.public_key(), cn=cn, client=True)


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    raw: bytes


class FakePlatform:
    """The platform's two agent endpoints, following docs/AGENT_PROTOCOL.md, on 127.0.0.1.

    Unit tests only: the lab runs the agent against the real platform.
    """

    token = "pna_fake-agent-token"

    def __init__(self, ca: TestCa, bind: tuple[str, int] = ("127.0.0.1", 0)) -> None:
        self.ca = ca
        self.hold_phase: str | None = None  # a handshake phase whose answer waits for `release`
        self.held = threading.Event()
        self.release = threading.Event()
        self.instance_id = str(uuid.uuid4())
        self.host_id = f"host-{uuid.uuid4()}"
        self.overlay = "fd00:abcd:1::2"
        # the network's client CA sent beside chain_pem (None: a platform from before per-network client CAs)
        self.client_ca_pem: bytes | None = None
        self.requests: list[Recorded] = []
        self.heartbeat_answers: list[dict[str, Any]] = []  # consumed in order; the last one repeats
        self.sdwan: list[dict[str, Any]] = []
        self.runtime_orders: list[dict[str, Any]] = []
        self.heartbeat_interval_s = 60
        # phase (or "heartbeat") -> (status, type, message), one-shot
        self.errors: dict[str, tuple[int, str, str]] = {}
        self.decommissioned = False
        self.host_status = None
        self.ready_pending = 0  # this many ready posts answer "pending" (the platform's probe failed)
        self.lock = threading.Lock()
        server_class = _HttpServer6 if ":" in bind[0] else ThreadingHTTPServer
        self.server = server_class(bind, self._handler())
        host = f"[{bind[0]}]" if ":" in bind[0] else bind[0]
        self.url = f"http://{host}:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    # what tests look at
    def handshakes(self) -> list[dict[str, Any]]:
        return [r.body for r in self.requests if r.path == "/api/v1/runtime/handshake"]

    def phases(self) -> list[str]:
        return [b.get("phase") for b in self.handshakes()]

    def heartbeats(self) -> list[dict[str, Any]]:
        return [r.body for r in self.requests if r.path == "/api/v1/agent/heartbeat"]

    # protocol
    def _error(self, status: int, type_name: str, message: str) -> tuple[int, dict[str, Any]]:
        return status, {"error": {"type": type_name, "message": message, "details": {}}}

    def heartbeat(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if "heartbeat" in self.errors:
            return self._error(*self.errors.pop("heartbeat"))
        if self.heartbeat_answers:
            answer = (
                self.heartbeat_answers.pop(0)
                if len(self.heartbeat_answers) > 1
                else self.heartbeat_answers[0]
            )
            return 200, {
                "instance_id": self.instance_id,
                "sdwan": [],
                "assignments": [],
                "runtime_orders": [],
                **answer,
            }
        return 200, {
            "instance_id": self.instance_id,
            "sdwan": self.sdwan,
            "assignments": [{"module_id": str(uuid.uuid4()), "name": "docker-engine", "runtime": "docker"}],
            "runtime_orders": self.runtime_orders,
            "heartbeat_interval_s": self.heartbeat_interval_s,
        }

    def handshake(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        phase = body.get("phase")
        if body.get("runtime") != "docker":
            return self._error(400, "ValidationError", "runtime must be docker")
        if phase in self.errors:
            return self._error(*self.errors.pop(phase))
        if self.decommissioned:
            return self._error(409, "ConflictError", f"{self.host_id} is decommissioned")
        if phase == "installing":
            return 200, {"next_phase": "wants_cert"}
        if phase == "wants_cert":
            try:
                csr = x509.load_pem_x509_csr(body["csr_pem"].encode())
            except (KeyError, ValueError, AttributeError):
                return self._error(400, "InvalidCsrError", "csr_pem is missing or not a PEM CSR")
            if not isinstance(csr.public_key(), ed25519.Ed25519PublicKey) or not csr.is_signature_valid:
                return self._error(400, "InvalidCsrError", "the CSR must be Ed25519 and correctly signed")
            if body.get("renew") is True and self.host_status != "connected":
                return self._error(409, "HostNotConnectedError", f"{self.host_id} is {self.host_status}")
            cert = self.ca.sign(csr.public_key(), cn=self.host_id, ips=(self.overlay,))
            if body.get("renew") is not True:
                self.host_status = "pending"
            return 200, {
                "host_id": self.host_id,
                "cert_pem": cert.decode(),
                "chain_pem": self.ca.pem.decode(),
                **({"client_ca_pem": self.client_ca_pem.decode()} if self.client_ca_pem else {}),
                "next_phase": "wants_config",
            }
        if phase == "wants_config":
            return 200, {
                "host_id": self.host_id,
                "next_phase": "ready",
                "daemon_config": {
                    "hosts": [f"tcp://[{self.overlay}]:2376"],
                    "ip": self.overlay,
                    "tls": True,
                    "tlsverify": True,
                    "tlscacert": "/etc/docker/powernode/ca.pem",
                    "tlscert": "/etc/docker/powernode/cert.pem",
                    "tlskey": "/etc/docker/powernode/key.pem",
                    "live-restore": True,
                },
            }
        if phase == "ready":
            if not body.get("version"):
                return self._error(400, "ValidationError", "version is required")
            if self.ready_pending > 0:
                self.ready_pending -= 1
                status = self.host_status or "pending"
                error = "ready was posted, but the platform could not reach the daemon: connection refused"
                return 200, {"host_id": self.host_id, "status": status, "next_phase": None, "error": error}
            self.host_status = "connected"
            return 200, {"host_id": self.host_id, "status": "connected", "next_phase": None}
        if phase == "failed":
            if not isinstance(body.get("error"), str):
                return self._error(400, "ValidationError", "error is required")
            return 200, {"host_id": self.host_id, "recorded": True}
        if phase == "decommissioned":
            if body.get("host_id") != self.host_id:
                return self._error(404, "NotFound", "unknown host")
            self.decommissioned = True
            self.host_status = "decommissioned"
            return 200, {"host_id": self.host_id, "status": "decommissioned"}
        return self._error(400, "ValidationError", f"unknown phase {phase!r}")

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        platform = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    body = json.loads(raw or b"{}")
                except json.JSONDecodeError:
                    body = {}
                if platform.hold_phase and body.get("phase") == platform.hold_phase:
                    platform.held.set()
                    platform.release.wait(60)
                with platform.lock:
                    platform.requests.append(Recorded(self.path, dict(self.headers), body, raw))
                    if self.headers.get("Authorization") != f"Bearer {platform.token}":
                        status, answer = platform._error(401, "NotAuthenticated", "bad agent token")
                    elif self.path == "/api/v1/agent/heartbeat":
                        status, answer = platform.heartbeat(body)
                    elif self.path == "/api/v1/runtime/handshake":
                        status, answer = platform.handshake(body)
                    else:
                        status, answer = platform._error(404, "NotFound", "no such endpoint")
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    self.wfile.write(data)
                except BrokenPipeError:
                    pass  # the agent was killed while we answered (the crash tests do that on purpose)

        return Handler


class _HttpServer6(ThreadingHTTPServer):
    address_family = socket.AF_INET6
    daemon_threads = True


class FakeDockerRuntime(DockerRuntime):
    """The real file handling and validation; the process side replaced (the real one has its own test)."""

    def __init__(self, config: AgentConfig, store: StateStore) -> None:
        super().__init__(config, store)
        self.running = False
        self.calls: list[str] = []
        self.crash_in: str | None = None

    def _maybe_crash(self, where: str) -> None:
        self.calls.append(where)
        if self.crash_in == where:
            self.crash_in = None
            raise SimulatedCrash(where)

    def dockerd_path(self) -> str | None:
        return "/usr/sbin/dockerd-fake"

    def engine_version(self) -> str:
        return "20.10.24+dfsg1"

    def write_tls(self, **kwargs: bytes) -> None:
        self._maybe_crash("write_tls")
        super().write_tls(**kwargs)

    def write_daemon_json(self, platform_config: dict[str, Any]) -> dict[str, Any]:
        self._maybe_crash("write_daemon_json")
        return super().write_daemon_json(platform_config)

    def start(self) -> None:
        self._maybe_crash("start")
        self.running = True

    def stop(self, *, timeout_s: float = 30.0) -> None:
        self.calls.append("stop")
        self.running = False

    def is_running(self) -> bool:
        return self.running

    def wait_ready(self, address: str, chain_pem: str, *, timeout_s: float | None = None) -> str:
        self._maybe_crash("wait_ready")
        assert self.running
        return self.engine_version()


class SimulatedCrash(BaseException):
    """Stands for the agent process dying mid-step (not an error the walker could report)."""


def require_root_tools(*tools: str) -> None:
    """Skip (with the reason) when not root or a tool is missing; under CI=true fail instead."""
    missing = [t for t in tools if shutil.which(t) is None]
    reason = None
    if os.geteuid() != 0:
        reason = "needs root (network namespaces)"
    elif missing:
        reason = (
            f"missing tools: {', '.join(missing)} (apt-get install wireguard-go wireguard-tools docker.io)"
        )
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and {reason}")
        pytest.skip(reason)
