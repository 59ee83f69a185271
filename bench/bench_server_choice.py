"""Which ASGI server to ship: the bare Django JSON view (the framework's floor, no database query) served by
each candidate, measured side by side in one run (sequential p50 and requests/s at concurrency 8, rounds
taking turns). The shipped one is scripts/serve.sh (gunicorn + uvicorn workers on uvloop/httptools).

    .venv/bin/python bench/bench_server_choice.py [--runs 1000] [--seconds 3] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import served
from bench_server import load, sequential_p50s


def candidates(port: int, workers: int) -> dict[str, list[str]]:
    py = sys.executable
    return {
        "serve.sh (gunicorn + uvicorn workers, uvloop, httptools)": [str(served.SERVE), "--log-level", "warning"],
        "gunicorn 27 asgi worker": [
            py, "-m", "gunicorn", "powernode.asgi:application", "-k", "asgi", "--bind", f"127.0.0.1:{port}",
            "--workers", str(workers), "--no-control-socket", "--log-level", "warning",
        ],
        "uvicorn, asyncio + h11 (make run before)": [
            py, "-m", "uvicorn", "powernode.asgi:application", "--port", str(port), "--workers", str(workers),
            "--loop", "asyncio", "--http", "h11", "--log-level", "warning", "--no-access-log",
        ],
    }  # fmt: skip


def start(argv: list[str], env: dict[str, str], port: int, log: Path) -> subprocess.Popen:
    proc = subprocess.Popen(argv, cwd=served.ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{argv[:3]} exited; see {log}")
        try:
            opener.open(f"http://127.0.0.1:{port}/bench/bare", timeout=1)
            return proc
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    raise SystemExit(f"{argv[:3]} did not answer; see {log}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="pn-bench-choice-"))
    from cryptography.fernet import Fernet

    base = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    base.update(
        POWERNODE_VAR_DIR=str(work), DJANGO_DEBUG="false", DJANGO_SECRET_KEY=secrets.token_urlsafe(40),
        POWERNODE_ENCRYPTION_KEY=Fernet.generate_key().decode(), DJANGO_ALLOWED_HOSTS="127.0.0.1",
        DJANGO_SETTINGS_MODULE="yardstick_settings", POWERNODE_LOG_LEVEL="ERROR",
        PYTHONPATH=os.pathsep.join(filter(None, [str(served.BENCH_DIR), os.environ.get("PYTHONPATH")])),
        POWERNODE_DOCKER_PROBE_INTERVAL_S="0", POWERNODE_WORKERS=str(args.workers),
    )  # fmt: skip
    procs, ports = {}, {}
    try:
        for name in candidates(0, args.workers):
            port = served.free_port()
            env = {**base, "POWERNODE_BIND": f"127.0.0.1:{port}"}
            procs[name] = start(candidates(port, args.workers)[name], env, port, work / f"{len(procs)}.log")
            ports[name] = port
        p50 = {name: [] for name in procs}
        rates = {name: [0, 0.0] for name in procs}
        for _ in range(args.rounds):
            for name, port in ports.items():
                p50[name].append(sequential_p50s(port, {"bare": ("GET", "/bench/bare", b"", {})}, args.runs)["bare"])
                count, elapsed = asyncio.run(load(port, args.seconds, args.concurrency, [("/bench/bare", "", b"")]))
                rates[name][0] += count
                rates[name][1] += elapsed
        print(f"bare Django JSON view, {args.workers} workers each, concurrency {args.concurrency}:")
        for name in procs:
            rate = rates[name][0] / rates[name][1]
            print(f"  {name:58s} p50 {min(p50[name]):6.3f} ms  {rate:7,.0f} requests/s")
    finally:
        for proc in procs.values():
            served.stop(proc)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
