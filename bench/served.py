"""The shipped server for benchmarks: ``scripts/serve.sh`` (what ``make run``, the lab and production run),
started on a free loopback port with the benchmark's environment, and stopped again.

``bare=True`` serves ``bench_settings`` instead of ``powernode.settings``: the same settings, middleware and
routes plus ``/bench/bare`` (a bare Django JSON view, sync) and ``/bench/bare-async``, the yardsticks the
benchmarks compare the platform's own endpoints with.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
SERVE = ROOT / "scripts" / "serve.sh"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(
    *, log: Path, env: dict[str, str] | None = None, workers: int | None = None, bare: bool = True
) -> tuple[subprocess.Popen, int]:
    """``scripts/serve.sh`` on 127.0.0.1:<free port>; returns (the gunicorn master, its port) once it answers."""
    port = free_port()
    environ = {**os.environ, **(env or {}), "POWERNODE_BIND": f"127.0.0.1:{port}"}
    if workers is not None:
        environ["POWERNODE_WORKERS"] = str(workers)
    if bare:
        environ["DJANGO_SETTINGS_MODULE"] = "bench_settings"
        environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(BENCH_DIR), environ.get("PYTHONPATH")]))
    environ.setdefault("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost")
    proc = subprocess.Popen(
        [str(SERVE), "--log-level", "warning"],
        cwd=ROOT,
        env=environ,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"scripts/serve.sh exited ({proc.returncode}); see {log}")
        try:
            opener.open(f"http://127.0.0.1:{port}/api/v1/agent/heartbeat", timeout=1)
        except urllib.error.HTTPError:
            return proc, port  # any HTTP answer (405 for GET) means a worker is serving
        except OSError:
            time.sleep(0.2)
    stop(proc)
    raise SystemExit(f"scripts/serve.sh did not answer on port {port}; see {log}")


def worker_pids(master: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == master:
                out.append(int(entry.name))
    return out


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
