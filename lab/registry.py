"""The lab's image registry: Debian's docker-registry, our own config, TLS from our CA, no auth; or the
private variant, with basic auth from a bcrypt htpasswd file (``htpasswd -B``, apache2-utils).

Debian's shipped config turns on htpasswd auth (every request a 401), so the lab writes its own.
Image references cannot hold IPv6 literals on dockerd 20.10, hence the registry's name.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from lab.netns import Netns, in_netns
from lab.pki import KeyPair
from lab.proc import LabError, wait_for, write_private

REGISTRY_NAME = "registry.powernode.internal"
REGISTRY_PORT = 5000
PRIVATE_REGISTRY_PORT = 5001  # the private twin (basic auth), same name and images


@dataclass
class LabRegistry:
    ns: Netns
    workdir: Path
    address: str  # IPv6 ULA in ``ns``
    tls: KeyPair  # certificate for ``name``, issued by the lab's (or the platform's) CA
    name: str = REGISTRY_NAME
    port: int = REGISTRY_PORT
    process: subprocess.Popen[bytes] | None = None
    htpasswd: str | None = None  # the htpasswd file's text: basic auth on every request (private registry)
    storage: Path | None = None  # another registry's storage to serve (default: <workdir>/storage)

    @property
    def host(self) -> str:
        """What image references start with: ``<name>:<port>``."""
        return f"{self.name}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "registry.log"

    @property
    def storage_dir(self) -> Path:
        return self.storage or self.workdir / "storage"

    def config_text(self) -> str:
        # YAML written by hand: the format is tiny and PyYAML is not a dependency.
        auth = [
            "auth:",
            "  htpasswd:",
            "    realm: powernode-lab",
            f"    path: {self.workdir / 'htpasswd'}",
        ] if self.htpasswd else []
        return "\n".join([
            "version: 0.1",
            "log:",
            "  level: info",
            "  accesslog:",
            "    disabled: true",
            "storage:",
            "  filesystem:",
            f"    rootdirectory: {self.storage_dir}",
            "  delete:",
            "    enabled: true",
            "http:",
            f'  addr: "[{self.address}]:{self.port}"',
            "  tls:",
            f"    certificate: {self.workdir / 'tls' / 'cert.pem'}",
            f"    key: {self.workdir / 'tls' / 'key.pem'}",
            *auth,
            "",
        ])

    def start(self, *, timeout: float = 20) -> LabRegistry:
        self.workdir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.storage_dir.mkdir(exist_ok=True)
        if self.htpasswd:
            write_private(self.workdir / "htpasswd", self.htpasswd, 0o600)
        write_private(self.workdir / "tls" / "cert.pem", self.tls.cert_pem, 0o644)
        write_private(self.workdir / "tls" / "key.pem", self.tls.key_pem, 0o600)
        config = write_private(self.workdir / "config.yml", self.config_text(), 0o600)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [*self.ns.prefix_argv(), "docker-registry", "serve", str(config)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )
        try:
            wait_for(lambda: self._dead() or self._accepts(), timeout=timeout, what="the image registry")
            if self._dead():
                raise LabError(f"docker-registry exited:\n{self.log_path.read_text()[-2000:]}")
        except Exception:
            self.stop()
            raise
        return self

    def _dead(self) -> bool:
        return self.process is not None and self.process.poll() is not None

    def _accepts(self) -> bool:
        with in_netns(self.ns.name), socket.create_connection((self.address, self.port), timeout=1):
            return True

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)


def bcrypt_htpasswd(username: str, password: str) -> str:
    """One htpasswd line with a bcrypt hash (the only kind docker-registry accepts), the password on stdin."""
    done = subprocess.run(
        ["htpasswd", "-i", "-B", "-n", username], input=password, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise LabError(f"htpasswd failed: {done.stderr.strip()}")
    return done.stdout.strip() + "\n"
