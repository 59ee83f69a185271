"""Start real platform server processes for tests: the one place that knows the serving command.

That is the shipped one, ``scripts/serve.sh`` (gunicorn with uvicorn workers), with one worker per process
here: the tests that want several processes start several, each on its own port.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from cryptography.fernet import Fernet

BASE_DIR = Path(__file__).resolve().parents[1]
STARTUP_DEADLINE_S = 90  # only a guard against a server that never comes up, not a measurement
_FOREIGN = ("DJANGO_", "POWERNODE_", "VAULT_", "DATABASE_URL", "PROMETHEUS_")


def production_env(var_dir: Path, **extra: str) -> dict[str, str]:
    """Production settings on a SQLite file under ``var_dir`` (DEBUG off, its own keys, loopback hosts)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_FOREIGN)}
    env.update(
        DJANGO_SETTINGS_MODULE="powernode.settings",
        POWERNODE_VAR_DIR=str(var_dir),
        DATABASE_URL=f"sqlite:///{var_dir / 'powernode.sqlite3'}",
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        POWERNODE_ENCRYPTION_KEY=Fernet.generate_key().decode(),
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        # no Docker daemons behind these servers: no probe at ready, no background prober
        POWERNODE_DOCKER_READY_PROBE="false",
        POWERNODE_DOCKER_PROBE_INTERVAL_S="0",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def _start(env: dict[str, str], log: Path) -> Server:
    port = free_port()
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [str(BASE_DIR / "scripts" / "serve.sh"), "--log-level", "warning"],
            cwd=BASE_DIR,
            env={**env, "POWERNODE_BIND": f"127.0.0.1:{port}", "POWERNODE_WORKERS": "1",
                 "POWERNODE_PYTHON": sys.executable},
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    return Server(url=f"http://127.0.0.1:{port}", process=process, log=log)


def _wait_up(server: Server) -> None:
    deadline = time.monotonic() + STARTUP_DEADLINE_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise AssertionError(f"the server exited ({server.process.returncode}):\n{server.log_text()}")
        try:
            if httpx.get(f"{server.url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"the server did not answer /healthz on {server.url}:\n{server.log_text()}")


@contextmanager
def serve(env: dict[str, str], var_dir: Path, *, count: int = 1) -> Iterator[list[Server]]:
    """``count`` platform processes on one environment (one database), each on its own loopback port."""
    servers = [_start(env, var_dir / f"server-{i}.log") for i in range(count)]
    try:
        for server in servers:
            _wait_up(server)
        yield servers
    finally:
        for server in servers:
            server.process.terminate()
        for server in servers:
            try:
                server.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.process.kill()
                server.process.wait()


def refused_start(env: dict[str, str], var_dir: Path, *, timeout: float = STARTUP_DEADLINE_S) -> tuple[int, str]:
    """Start one platform process expected not to come up: (its exit status, its output)."""
    server = _start(env, var_dir / "refused.log")
    try:
        returncode = server.process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()
        raise AssertionError(f"the server kept running:\n{server.log_text()}") from None
    return returncode, server.log_text()


def setup_platform(env: dict[str, str]) -> str:
    """Migrate, load the catalog, make the CA and the admin (``powernode_setup``); the operator token."""
    done = subprocess.run(
        [sys.executable, "manage.py", "powernode_setup"], cwd=BASE_DIR, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return (Path(env["POWERNODE_VAR_DIR"]) / "operator_token").read_text().strip()
