"""The powernode platform inside a lab: its settings, its one-off commands, its server and an operator client.

The platform runs in the lab's platform namespace (beside the SDWAN hub, so it reaches overlays the way a
real platform host does), with its own ``POWERNODE_VAR_DIR`` (SQLite database, local CA) under the lab's
work directory. The operator API is reached from that namespace too (``lab.netns.in_netns``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from lab.netns import in_netns
from lab.proc import LabError, wait_for
from lab.topology import SERVER_PORT, Lab

BASE_DIR = Path(__file__).resolve().parents[1]
# Variables of the machine that would point the lab's platform at something else (Vault, another database).
_FOREIGN_ENV_PREFIXES = ("VAULT_", "POWERNODE_", "DJANGO_", "DATABASE_URL")


class ApiError(LabError):
    """An action answered with the platform's error shape."""

    def __init__(self, action: str, status: int, body: Any) -> None:
        error = body.get("error", {}) if isinstance(body, dict) else {}
        self.action, self.status, self.body = action, status, body
        self.type = error.get("type", "")
        super().__init__(f"{action}: {status} {self.type}: {error.get('message', body)}")


def platform_env(
    var_dir: Path, *, heartbeat_interval_s: int = 60, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment of every platform process of the lab (server, commands)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_FOREIGN_ENV_PREFIXES)}
    env.update(
        DJANGO_SETTINGS_MODULE="powernode.settings",
        # a development platform, like make run: keys made under var_dir, every Host header accepted (the
        # server listens on the lab's service address only)
        DJANGO_DEBUG="true",
        POWERNODE_VAR_DIR=str(var_dir),
        DATABASE_URL=f"sqlite:///{var_dir / 'powernode.sqlite3'}",
        POWERNODE_HEARTBEAT_INTERVAL_S=str(heartbeat_interval_s),
        PYTHONUNBUFFERED="1",
        PYTHONDONTWRITEBYTECODE="1",
    )
    env.update(extra or {})
    return env


@dataclass
class LabPlatform:
    """The platform of one lab: commands, server process and the operator's HTTP client."""

    lab: Lab
    heartbeat_interval_s: int = 60  # the product default: the agent watches, so changes still arrive at once
    # settings of this lab's platform beyond the defaults (a test's short probe interval, certificate minutes)
    extra_env: dict[str, str] = field(default_factory=dict)
    # uvicorn's access log in server.log (every request line): the tutorial lab checks no token is in a URL
    access_log: bool = False
    token: str = ""
    operator: str = ""
    _session: requests.Session | None = field(default=None, init=False, repr=False)

    @property
    def var_dir(self) -> Path:
        return self.lab.dir / "platform"

    @property
    def env(self) -> dict[str, str]:
        # the URL nodes reach the platform at: system_provision_instance's enrollment command names it
        extra = {"POWERNODE_PUBLIC_URL": self.url, **self.extra_env}
        return platform_env(self.var_dir, heartbeat_interval_s=self.heartbeat_interval_s, extra=extra)

    @property
    def address(self) -> str:
        return self.lab.service_address

    @property
    def url(self) -> str:
        return f"http://[{self.address}]:{SERVER_PORT}"

    # --- one-off commands on the platform machine ---------------------------------------------------
    def command(self, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """``python <argv>`` in the checkout with the platform's environment (not in a namespace: the
        commands only touch the database and the CA files)."""
        self.var_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        done = subprocess.run(
            [sys.executable, *argv],
            cwd=BASE_DIR,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise LabError(
                f"platform command {' '.join(argv)} failed ({done.returncode}):\n"
                f"{(done.stderr or done.stdout)[-3000:]}"
            )
        return done

    def side(self, *argv: str) -> dict[str, Any]:
        """``python -m lab.platform_side ...``: its JSON answer."""
        return json.loads(self.command("-m", "lab.platform_side", *argv).stdout)

    def manage(self, *argv: str) -> str:
        return self.command("manage.py", *argv).stdout

    def setup(self, *, registry_name: str) -> dict[str, Any]:
        """Database, catalog, local CA, the operator's token; returns the registry's TLS material too."""
        answer = self.side("setup", "--registry-name", registry_name, "--registry-address", self.address)
        self.token, self.operator = answer["token"], answer["operator"]
        return answer

    # --- the server -----------------------------------------------------------------------------------
    def start_server(self) -> subprocess.Popen[bytes]:
        """uvicorn serving powernode.asgi (REST API, agent endpoints, /mcp) on the service address."""
        env = self.env
        # Lab.spawn merges this process's environment in: drop what would point the server elsewhere.
        unset = [
            f"--unset={k}" for k in sorted(os.environ) if k.startswith(_FOREIGN_ENV_PREFIXES) and k not in env
        ]
        argv = [
            "env",
            *unset,
            sys.executable,
            "-m",
            "uvicorn",
            "powernode.asgi:application",
            "--host",
            self.address,
            "--port",
            str(SERVER_PORT),
            "--workers",
            "1",
            *(["--log-level", "info", "--access-log"] if self.access_log else ["--log-level", "warning"]),
            *([] if self.access_log else ["--no-access-log"]),
        ]
        return self.lab.spawn("platform", "server", argv, env=env, sandbox=False, cwd=BASE_DIR)

    def wait_server(self, *, timeout: float = 60) -> None:
        process = self.lab.processes["server"]

        def answers() -> bool:
            if process.poll() is not None:
                raise LabError(f"the platform server exited ({process.returncode}):\n{self.log_tail()}")
            response = self.get("/api/v1/pki/ca", timeout=2)
            if response.status_code != 200:  # up, but e.g. its CA does not answer: say so at the timeout
                raise LabError(f"GET /api/v1/pki/ca answered {response.status_code}: {response.text[:300]}")
            return True

        try:
            wait_for(answers, timeout=timeout, what=f"the platform server on {self.url}", interval=0.1)
        except LabError as exc:
            if process.poll() is not None:
                raise LabError(
                    f"the platform server exited ({process.returncode}):\n{self.log_tail()}"
                ) from exc
            raise

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return (self.lab.dir / "logs" / "server.log").read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    # --- HTTP, from the platform's namespace ---------------------------------------------------------

    def _http(self) -> requests.Session:
        if self._session is None:
            session = requests.Session()
            session.trust_env = False  # the machine's proxies and CA bundles are not the lab's
            self._session = session
        return self._session

    def get(self, path: str, *, timeout: float = 30, as_operator: bool = False) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token}"} if as_operator else {}
        with in_netns(self.lab.platform.name):
            return self._http().get(self.url + path, timeout=timeout, headers=headers)

    def call(
        self, action: str, payload: Mapping[str, Any] | None = None, *, timeout: float = 120
    ) -> tuple[int, Any]:
        """POST /api/v1/actions/<action> as the operator: (status, JSON body)."""
        with in_netns(self.lab.platform.name):
            response = self._http().post(
                f"{self.url}/api/v1/actions/{action}",
                json=dict(payload or {}),
                timeout=timeout,
                headers={"Authorization": f"Bearer {self.token}"},
            )
        try:
            body = response.json()
        except ValueError:
            body = response.text
        return response.status_code, body

    def action(self, action: str, payload: Mapping[str, Any] | None = None, *, timeout: float = 120) -> Any:
        """Call an action; its output, or ApiError with the platform's error."""
        status, body = self.call(action, payload, timeout=timeout)
        if status != 200:
            raise ApiError(action, status, body)
        return body

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None
