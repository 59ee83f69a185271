"""MCP test fixtures: a platform database of the tests' own, the stdio server and uvicorn serving /mcp.

Why a file database of our own: the servers under test run in subprocesses (``manage.py mcp_server``
over stdio, ``uvicorn powernode.asgi:application`` over HTTP), and pytest-django's test database is
private to the pytest process (in-memory SQLite, or a transaction the subprocess cannot see). So the
MCP tests migrate a SQLite file under a temp dir (POWERNODE_VAR_DIR + DATABASE_URL for every
subprocess), seed operators in a subprocess, and check results through the MCP tools themselves.
Tests make their own uniquely named objects, so they can share the database.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import mcp_types as types
import pytest
from cryptography.fernet import Fernet
from mcp import Client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

BASE_DIR = Path(__file__).resolve().parents[2]
ALLOWED_HOST = "powernode.test"  # a non-localhost name the HTTP server accepts in Host headers
# one pair per test run, shared by every subprocess of the run (they share the database)
SECRET_KEY = secrets.token_urlsafe(50)
ENCRYPTION_KEY = Fernet.generate_key().decode()
STARTUP_DEADLINE_S = 60  # only a guard against a server that never comes up, not a measurement


@dataclass
class Platform:
    var_dir: Path
    env: dict[str, str]
    tokens: dict[str, str]

    def django(self, code: str) -> str:
        """Run Python in a Django shell against the tests' database; return its stdout."""
        done = subprocess.run(
            [sys.executable, "manage.py", "shell", "--no-imports", "-c", code],
            cwd=BASE_DIR,
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout


def platform_env(var_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "POWERNODE_", "DJANGO_"))}
    env.update(
        POWERNODE_VAR_DIR=str(var_dir),
        DATABASE_URL=f"sqlite:///{var_dir / 'powernode.sqlite3'}",
        DJANGO_SETTINGS_MODULE="powernode.settings",
        # production settings, as a deployment runs them: DEBUG off, its own keys, the hosts it answers to
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY=SECRET_KEY,
        POWERNODE_ENCRYPTION_KEY=ENCRYPTION_KEY,
        DJANGO_ALLOWED_HOSTS=f"127.0.0.1,localhost,{ALLOWED_HOST}",
        PYTHONUNBUFFERED="1",
    )
    return env


@pytest.fixture(scope="session")
def mcp_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    var_dir = tmp_path_factory.mktemp("mcp-platform")
    # This platform's server runs on loopback outside any lab namespace: it cannot reach an overlay /128, so
    # its own probe at `ready` would leave a real host pending. The MCP tests are about the transport; the
    # probe is tested in tests/docker_ops/test_probe.py and, through the hub, in the lab (tests/lab).
    env = {**platform_env(var_dir), "POWERNODE_DOCKER_READY_PROBE": "false", "POWERNODE_DOCKER_PROBE_INTERVAL_S": "0"}
    done = subprocess.run(
        [sys.executable, "-m", "tests.mcp.seed"], cwd=BASE_DIR, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    yield Platform(var_dir=var_dir, env=env, tokens=json.loads(done.stdout.strip().splitlines()[-1]))
    shutil.rmtree(var_dir, ignore_errors=True)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def uvicorn_server(platform: Platform, name: str = "uvicorn") -> Iterator[str]:
    """One platform server process (uvicorn, the composed ASGI app) on a free loopback port; yields its URL."""
    port = _free_port()
    log_path = platform.var_dir / f"{name}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "powernode.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            cwd=BASE_DIR,
            env=platform.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(proc, base, log_path)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def mcp_http(mcp_platform: Platform) -> Iterator[str]:
    """uvicorn serving the composed ASGI app on a free loopback port; yields the base URL."""
    with uvicorn_server(mcp_platform) as base:
        yield base


def _wait_until_up(proc: subprocess.Popen, base: str, log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_DEADLINE_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"uvicorn exited with {proc.returncode}:\n{log_path.read_text()}")
        try:
            httpx2.get(f"{base}/api/v1/actions/", timeout=2)
            return
        except httpx2.TransportError:
            time.sleep(0.2)
    pytest.fail(f"uvicorn did not answer on {base}:\n{log_path.read_text()}")


@dataclass
class Transport:
    """Opens MCP client sessions (the SDK's Client around its ClientSession) over one transport."""

    kind: str  # stdio | http
    platform: Platform
    http_base: str | None = None
    mode: str = "auto"  # the SDK client's protocol negotiation: "auto" (2026 era) or "legacy" (initialize)
    launcher: tuple[str, ...] = ()  # stdio: a command the server runs under (e.g. nsenter into a netns)

    @contextlib.asynccontextmanager
    async def session(self, token: str, *, host: str | None = None) -> AsyncIterator[Client]:
        if self.kind == "stdio":
            argv = [*self.launcher, sys.executable, "manage.py", "mcp_server"]
            params = StdioServerParameters(
                command=argv[0],
                args=argv[1:],
                cwd=str(BASE_DIR),
                env={**self.platform.env, "POWERNODE_TOKEN": token},
            )
            with open(self.platform.var_dir / f"stdio-{uuid.uuid4().hex[:8]}.log", "w") as errlog:
                async with Client(stdio_client(params, errlog=errlog), cache=None, mode=self.mode) as client:
                    yield client
        else:
            headers = {"Authorization": f"Bearer {token}"}
            if host:
                headers["Host"] = host
            async with httpx2.AsyncClient(headers=headers, timeout=60) as http:
                transport = streamable_http_client(f"{self.http_base}/mcp", http_client=http)
                async with Client(transport, cache=None, mode=self.mode) as client:
                    yield client


# Raw JSON-RPC for the tests that speak MCP without the SDK (handshake refusals, malformed calls).
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "powernode-tests", "version": "1"},
    },
}
INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}
MCP_HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}

TRANSPORTS = ["stdio", "http", "http-legacy"]


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest, mcp_platform: Platform) -> Transport:
    kind, _, mode = request.param.partition("-")
    base = request.getfixturevalue("mcp_http") if kind == "http" else None
    return Transport(kind=kind, platform=mcp_platform, http_base=base, mode=mode or "auto")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def output(result: types.CallToolResult) -> dict[str, Any]:
    """The output of a successful call, checking that the text and structured forms agree."""
    assert not result.is_error, result.content
    assert len(result.content) == 1 and isinstance(result.content[0], types.TextContent)
    data = json.loads(result.content[0].text)
    assert result.structured_content == data
    return data


def error(result: types.CallToolResult) -> dict[str, Any]:
    """The REST-shaped error of a refused call: {"type", "message", "details"}."""
    assert result.is_error, result.content
    assert len(result.content) == 1 and isinstance(result.content[0], types.TextContent)
    body = json.loads(result.content[0].text)
    assert set(body) == {"error"} and set(body["error"]) == {"type", "message", "details"}, body
    assert result.structured_content == body
    return body["error"]
