"""A real powernode cluster on loopback for the cluster tests and bench/bench_cluster.py (never production).

One fresh PostgreSQL database (on the project's throwaway cluster, ``scripts/pg.sh``), one ``bao server -dev``
(tests/openbao.py) with the platform's PKI bootstrapped (so the platform signs with the VaultCaAdapter), N
platform processes on 127.0.0.1, and HAProxy (Debian's package, scripts/install_lab_deps.sh) in front of them
with health checks, as deploy/haproxy/haproxy.cfg ships it. A process can be killed with SIGKILL and started
again; HAProxy's state is read from its stats socket. Also the simulated agent (asyncio, raw HTTP/1.1, as
bench/bench_handshake.py drives the platform) that walks the docker handshake and heartbeats through the load
balancer, retrying failed requests with jittered backoff like powernode-agent.

This module imports no Django: the database is prepared in a subprocess (``python -m tests.cluster.seed``)
with the platform's own environment, and read back here with psycopg.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import csv
import io
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.openbao import OpenBaoServer

ROOT = Path(__file__).resolve().parents[2]
# HAProxy's health check: the readiness endpoint (200 when the database and the CA, OpenBao here, answer).
READY_PATH = "/readyz"
# Health checks as the sample configuration ships them: every 500 ms, DOWN after 2 failures, UP after 1 success.
CHECK = "inter 500ms fall 2 rise 1"
STARTUP_TIMEOUT_S = 90  # a guard against a process that never comes up, not a measurement


class ClusterError(RuntimeError):
    """A cluster step failed; the message carries the command and its output."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def haproxy_binary() -> str | None:
    return shutil.which("haproxy") or ("/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None)


def why_cluster_cannot_run() -> str | None:
    """None when the cluster can run here, else a human reason."""
    if haproxy_binary() is None:
        return "haproxy is not installed: run scripts/install_lab_deps.sh (Debian package haproxy)"
    return None


# --- PostgreSQL ----------------------------------------------------------------------------------------------
def postgres_base_url() -> str:
    """The project's PostgreSQL: CLUSTER_DATABASE_URL, else a postgres DATABASE_URL, else ``scripts/pg.sh start``."""
    for name in ("CLUSTER_DATABASE_URL", "DATABASE_URL"):
        url = os.environ.get(name, "")
        if url.startswith(("postgres://", "postgresql://")):
            return url
    pg_env = {**os.environ, "POWERNODE_VAR_DIR": str(ROOT / "var")}  # the checkout's shared throwaway cluster
    done = subprocess.run(
        [str(ROOT / "scripts" / "pg.sh"), "start"], capture_output=True, text=True, env=pg_env, check=False
    )
    if done.returncode != 0:
        raise ClusterError(f"scripts/pg.sh start failed:\n{done.stderr[-2000:]}")
    return done.stdout.strip()


def _admin_url(url: str) -> str:
    return url.rsplit("/", 1)[0] + "/postgres"


def fresh_database(name: str) -> str:
    """Drop and create ``name`` on the project's PostgreSQL; its URL."""
    import psycopg

    base = postgres_base_url()
    with psycopg.connect(_admin_url(base), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return base.rsplit("/", 1)[0] + f"/{name}"


def drop_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1].split("?", 1)[0]
    with psycopg.connect(_admin_url(url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def query(url: str, sql: str, params: tuple = ()) -> list[tuple]:
    import psycopg

    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


# --- the platform's processes --------------------------------------------------------------------------------
def platform_env(
    work: Path, *, database_url: str, openbao: OpenBaoServer, extra: dict[str, str] | None = None
) -> dict[str, str]:
    """What every platform process of the cluster runs with: production settings (DEBUG off, keys shared by
    all processes), one PostgreSQL database, OpenBao as the CA and KV store."""
    from cryptography.fernet import Fernet

    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "POWERNODE_", "DJANGO_"))}
    env.pop("DATABASE_URL", None)
    env.update(
        DJANGO_SETTINGS_MODULE="powernode.settings",
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        POWERNODE_ENCRYPTION_KEY=Fernet.generate_key().decode(),
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        DATABASE_URL=database_url,
        POWERNODE_VAR_DIR=str(work / "var"),
        VAULT_ADDR=openbao.url,
        VAULT_TOKEN=openbao.token,
        # Simulated agents have no dockerd behind their overlay address: ready promotes without the
        # platform's probe, and no background prober marks the hosts unreachable (the lab runs both).
        POWERNODE_DOCKER_READY_PROBE="false",
        POWERNODE_DOCKER_PROBE_INTERVAL_S="0",
        POWERNODE_LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
        PYTHONDONTWRITEBYTECODE="1",
    )
    env.update(extra or {})
    return env


def serve_command(port: int) -> tuple[list[str], dict[str, str]]:
    """How one platform process is started (the only place): the shipped ``scripts/serve.sh`` (gunicorn and
    one uvicorn worker) on 127.0.0.1:port; (argv, environment it adds)."""
    env = {"POWERNODE_BIND": f"127.0.0.1:{port}", "POWERNODE_WORKERS": "1", "POWERNODE_PYTHON": sys.executable}
    return [str(ROOT / "scripts" / "serve.sh"), "--log-level", "warning"], env


def _opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: no proxy


def http_status(url: str, timeout: float = 2.0) -> int:
    try:
        with _opener().open(url, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


@dataclass
class PlatformProcess:
    """One platform process on 127.0.0.1:port, in its own process group (killed as a whole)."""

    name: str
    port: int
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        if self.alive:
            return
        self.starts += 1
        with self.log.open("ab") as log:
            log.write(f"--- start {self.starts} ---\n".encode())
            log.flush()
            argv, extra = serve_command(self.port)
            self.proc = subprocess.Popen(
                argv,
                cwd=ROOT,
                env={**self.env, **extra},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self, timeout: float = STARTUP_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive:
                raise ClusterError(f"{self.name} exited ({self.proc and self.proc.returncode}):\n{self.log_tail()}")
            with contextlib.suppress(OSError):
                if http_status(self.url + READY_PATH) == 200:
                    return
            time.sleep(0.1)
        raise ClusterError(f"{self.name} did not answer 200 on {READY_PATH} in {timeout}s:\n{self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL to the whole process group: no shutdown, no finishing of requests in flight."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


# --- HAProxy ---------------------------------------------------------------------------------------------------
def haproxy_config(*, bind: str, servers: list[tuple[str, str]], stats_socket: Path) -> str:
    """The load balancer of deploy/haproxy/haproxy.cfg with these addresses (``servers``: (name, host:port))."""
    lines = "\n".join(f"    server {name} {address} check" for name, address in servers)
    return f"""\
global
    maxconn 4096
    log stdout format raw local0
    stats socket {stats_socket} mode 600 level admin

defaults
    mode http
    log global
    option httplog
    timeout connect 2s
    timeout client 60s
    timeout server 90s
    timeout http-keep-alive 10s
    # a check may answer slowly under load (2 shared cores): a slow answer is not a dead process, a refused
    # connection is (DOWN after 2 checks, about 1 s)
    timeout check 3s
    # a connection refused by a dead process is retried on another one; a request already sent is never
    # replayed (the platform's writes are not all idempotent)
    retries 3
    option redispatch 1
    retry-on conn-failure

frontend powernode
    bind {bind}
    default_backend platform

backend platform
    balance roundrobin
    option httpchk
    http-check send meth GET uri {READY_PATH} ver HTTP/1.1 hdr Host localhost
    http-check expect status 200
    # which process answered (the cluster tests check that one MCP session's calls reached several)
    http-response set-header X-Served-By %s
    default-server {CHECK}
{lines}
"""


@dataclass
class HAProxy:
    work: Path
    servers: list[tuple[str, str]]
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def stats_socket(self) -> Path:
        return self.work / "haproxy.sock"

    def start(self) -> None:
        binary = haproxy_binary()
        if binary is None:
            raise ClusterError(why_cluster_cannot_run() or "no haproxy")
        config = self.work / "haproxy.cfg"
        config.write_text(
            haproxy_config(bind=f"127.0.0.1:{self.port}", servers=self.servers, stats_socket=self.stats_socket)
        )
        check = subprocess.run([binary, "-c", "-q", "-f", str(config)], capture_output=True, text=True)
        if check.returncode != 0:
            raise ClusterError(f"haproxy -c refused the configuration:\n{check.stdout}{check.stderr}")
        log = (self.work / "haproxy.log").open("ab")
        with log:
            # -db: stay in the foreground (no daemon), so the process is ours to stop
            self.proc = subprocess.Popen(
                [binary, "-db", "-f", str(config)], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ClusterError(f"haproxy exited:\n{(self.work / 'haproxy.log').read_text()[-2000:]}")
            if self.stats_socket.exists():
                with contextlib.suppress(OSError):
                    self.stats()
                    return
            time.sleep(0.05)
        raise ClusterError("haproxy's stats socket did not answer")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def command(self, line: str) -> str:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            sock.connect(str(self.stats_socket))
            sock.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def stats(self) -> dict[str, dict[str, str]]:
        """``show stat`` of the platform backend's servers, by server name (status, stot, check_status...)."""
        text = self.command("show stat").lstrip("# ")
        rows = csv.DictReader(io.StringIO(text))
        servers = (r for r in rows if r["pxname"] == "platform")
        return {r["svname"]: r for r in servers if r["svname"] not in ("BACKEND", "FRONTEND")}

    def status(self, server: str) -> str:
        return self.stats()[server]["status"]

    def wait_status(self, server: str, prefix: str, timeout: float = 60) -> float:
        """Poll until the server's status starts with ``prefix`` (UP, DOWN); seconds it took."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.status(server).startswith(prefix):
                return time.monotonic() - started
            time.sleep(0.02)
        raise ClusterError(f"haproxy did not mark {server} {prefix} in {timeout}s: {self.stats()[server]}")


# --- the cluster -----------------------------------------------------------------------------------------------
@dataclass
class Cluster:
    work: Path
    database_url: str
    openbao: OpenBaoServer
    env: dict[str, str]
    processes: list[PlatformProcess]
    haproxy: HAProxy
    seed: dict[str, Any]

    @property
    def url(self) -> str:
        return self.haproxy.url

    def manage(self, *argv: str, timeout: float = 300) -> str:
        """``manage.py <argv>`` with the platform's environment (a worker or one-off command on a platform host)."""
        done = subprocess.run(
            [sys.executable, "manage.py", *argv], cwd=ROOT, env=self.env, capture_output=True, text=True,
            timeout=timeout, check=False,
        )
        if done.returncode != 0:
            raise ClusterError(f"manage.py {' '.join(argv)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
        return done.stdout

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        return query(self.database_url, sql, params)

    def vault_list(self, path: str) -> list[str]:
        """LIST ``path`` on OpenBao (root token): its keys, [] when there is nothing."""
        status, body = self.openbao._request("LIST", f"/v1/{path}")
        if status == 404:
            return []
        if status != 200:
            raise ClusterError(f"LIST {path}: {status} {body}")
        return body["data"]["keys"]

    def vault_get(self, path: str) -> tuple[int, dict]:
        return self.openbao._request("GET", f"/v1/{path}")


@contextlib.contextmanager
def running_cluster(
    work: Path, *, processes: int = 3, agents: int = 300, database: str = "powernode_cluster"
) -> Iterator[Cluster]:
    """Database, OpenBao, the seeded fleet, ``processes`` platform processes, the outbox worker
    (``manage.py powernode_worker --job vault_outbox``) and HAProxy; all stopped on exit
    (and the database dropped), also when the body fails."""
    work.mkdir(parents=True, exist_ok=True)
    database_url = fresh_database(database)
    stack = contextlib.ExitStack()
    try:
        stack.callback(drop_database, database_url)
        openbao = stack.enter_context(OpenBaoServer(work / "openbao"))
        env = platform_env(work, database_url=database_url, openbao=openbao)
        done = subprocess.run(
            [sys.executable, "-m", "tests.cluster.seed", "--agents", str(agents)],
            cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=600,
        )
        if done.returncode != 0:
            raise ClusterError(f"seeding the cluster's database failed:\n{done.stderr[-3000:]}")
        seed = json.loads(done.stdout.strip().splitlines()[-1])
        procs = [
            PlatformProcess(name=f"p{i + 1}", port=free_port(), env=env, log=work / f"p{i + 1}.log")
            for i in range(processes)
        ]
        for proc in procs:
            stack.callback(proc.stop)
            proc.start()
        for proc in procs:
            proc.wait_ready()
        # the outbox worker a deployment runs next to the servers (the Docker probe job is off: no daemons)
        worker = subprocess.Popen(
            [sys.executable, "manage.py", "powernode_worker", "--job", "vault_outbox"],
            cwd=ROOT, env=env, stdout=(work / "worker.log").open("ab"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        stack.callback(_stop_group, worker)
        haproxy = HAProxy(work, [(p.name, f"127.0.0.1:{p.port}") for p in procs])
        stack.callback(haproxy.stop)
        haproxy.start()
        for proc in procs:
            haproxy.wait_status(proc.name, "UP", timeout=30)
        yield Cluster(
            work=work, database_url=database_url, openbao=openbao, env=env, processes=procs, haproxy=haproxy,
            seed=seed,
        )
    finally:
        stack.close()


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


# --- simulated agents ------------------------------------------------------------------------------------------
class Http:
    """One client HTTP/1.1 keep-alive connection (a load test's economy: the agent opens one per request),
    reopened when the other side closes it or answers an error. Transport failures
    (connection refused or reset, the connection closed before an answer, a timeout) raise OSError."""

    def __init__(self, port: int, timeout_s: float = 60.0) -> None:
        self.port = port
        self.timeout_s = timeout_s
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(
        self, method: str, path: str, *, token: str = "", body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        try:
            return await asyncio.wait_for(self._request(method, path, token, body, headers or {}), self.timeout_s)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:
            self.close()
            raise OSError(f"{type(exc).__name__}: {exc}") from None

    async def _request(
        self, method: str, path: str, token: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n"
        if token:
            head += f"Authorization: Bearer {token}\r\n"
        if body:
            head += "Content-Type: application/json\r\n"
        for name, value in headers.items():
            head += f"{name}: {value}\r\n"
        self.writer.write(head.encode() + b"\r\n" + body)
        await self.writer.drain()
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionResetError("closed before an answer")
        status = int(status_line.split()[1])
        length, close = 0, False
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "connection" and value.strip().lower() == "close":
                close = True
        payload = await self.reader.readexactly(length) if length else b""
        # HAProxy closes the connection after an error of its own (502 from a killed process): a new one for
        # the next request, as powernode-agent (urllib, one connection per request) always has
        if close or status >= 500:
            self.close()
        return status, payload

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


@dataclass
class Tally:
    """Every request the simulated agents sent: how many, how many failed and why (each failure was retried)."""

    total: int = 0
    failed: int = 0
    reasons: Counter = field(default_factory=Counter)
    by_phase: Counter = field(default_factory=Counter)
    failed_at: list[tuple[float, str]] = field(default_factory=list)  # (time.monotonic(), reason)

    def ok(self) -> None:
        self.total += 1

    def fail(self, what: str, reason: str) -> None:
        self.total += 1
        self.failed += 1
        self.reasons[reason] += 1
        self.by_phase[what] += 1
        self.failed_at.append((time.monotonic(), reason))

    @property
    def error_rate(self) -> float:
        return self.failed / self.total if self.total else 0.0

    def line(self) -> str:
        top = ", ".join(f"{r} x{n}" for r, n in self.reasons.most_common(6)) or "none"
        return (
            f"{self.failed} failed of {self.total} requests (error rate {self.error_rate:.3%}, each retried); "
            f"failures: {top}"
        )


HEARTBEAT = "/api/v1/agent/heartbeat"
HANDSHAKE = "/api/v1/runtime/handshake"
ENGINE_VERSION = "20.10.24"


@dataclass
class SimAgent:
    """One simulated agent: its instance, token, the one CSR of its walk (reused by every retry, as
    powernode-agent keeps its key) and what the platform answered."""

    instance_id: str
    token: str
    csr_pem: str
    wg_key: str = field(default_factory=lambda: base64.b64encode(secrets.token_bytes(32)).decode())
    host_id: str = ""
    cert_pem: str = ""
    status: str = ""
    wants_cert_attempts: int = 0
    phase: str = "none"

    async def call(
        self, http: Http, tally: Tally, what: str, path: str, body: dict[str, Any], *, backoff: Backoff
    ) -> dict[str, Any]:
        """POST until a 200 answer; every other answer or transport failure counts as one failed request and
        is retried after a jittered backoff. 4xx answers other than 429 are not transient: they fail the walk."""
        failures = 0
        while True:
            if what == "wants_cert":
                self.wants_cert_attempts += 1
            try:
                status, payload = await http.request("POST", path, token=self.token, body=json.dumps(body).encode())
            except OSError as exc:
                reason = f"transport ({str(exc).split(':')[0]})"
            else:
                if status == 200:
                    tally.ok()
                    return json.loads(payload)
                reason = f"HTTP {status}"
                if 400 <= status < 500 and status != 429:
                    tally.fail(what, reason)
                    raise ClusterError(f"{what}: {status} {payload[:300]!r}")
            tally.fail(what, reason)
            failures += 1
            await asyncio.sleep(backoff.delay(failures))

    async def heartbeat(self, http: Http, tally: Tally, *, backoff: Backoff) -> dict[str, Any]:
        body = {
            "agent_version": "0.1.0",
            "wireguard_public_key": self.wg_key,
            "runtimes": {"docker": {"phase": self.phase}},
        }
        return await self.call(http, tally, "heartbeat", HEARTBEAT, body, backoff=backoff)

    async def walk(self, http: Http, tally: Tally, *, backoff: Backoff) -> None:
        """installing → wants_cert → wants_config → ready, each phase retried until answered."""
        for phase, extra in (
            ("installing", {}),
            ("wants_cert", {"csr_pem": self.csr_pem}),
            ("wants_config", {}),
            ("ready", {"version": ENGINE_VERSION}),
        ):
            answer = await self.call(
                http, tally, phase, HANDSHAKE, {"runtime": "docker", "phase": phase, **extra}, backoff=backoff
            )
            self.phase = phase
            if phase == "wants_cert":
                self.host_id, self.cert_pem = answer["host_id"], answer["cert_pem"]
            if phase == "ready":
                self.status = answer["status"]


@dataclass
class Backoff:
    """Full jitter over base × 2^(failures-1), capped (powernode-agent: base 1 s, cap 60 s; the simulation
    retries sooner, as a load test)."""

    base_s: float = 0.1
    cap_s: float = 2.0

    def delay(self, failures: int) -> float:
        return random.uniform(0.0, min(self.cap_s, self.base_s * 2 ** min(failures - 1, 20)))


def make_agents(seed: dict[str, Any]) -> list[SimAgent]:
    from tests.csr import make_csr

    return [
        SimAgent(instance_id=iid, token=token, csr_pem=make_csr(common_name="cluster-agent"))
        for iid, token in seed["agents"]
    ]
