"""The framework's cost on the shipped server (scripts/serve.sh, PostgreSQL, production settings, the shipped
60 s heartbeat interval): each platform endpoint against a bare Django JSON view served the same way, measured
side by side in one run so the machine's noise cancels (issue 15).

- ``ratio action_vs_bare_view``: p50 of ``POST /api/v1/actions/system_list_modules`` (an operator in the
  'Platform admins' group, not a superuser: its permissions are looked up) over p50 of ``GET /bench/bare``,
  sequential keep-alive requests taking turns (goal <= 1.5).
- ``ratio heartbeat_vs_bare_view``: agent heartbeats/s over the bare view's requests/s, same server, same
  concurrency, rounds taking turns (goal >= 0.5); ``rate heartbeats_per_s`` is the heartbeat figure alone.
  These heartbeats are steady ones: each agent calls again within seconds, so none records its liveness.
- ``rate heartbeats_writing_per_s`` (and its ratio): heartbeats that each write the instance's row, as every
  heartbeat at the shipped 60 s interval does (liveness is recorded when the last one is over 20 s old). Here
  each agent's calls alternate its agent_version, which makes the same one-row UPDATE (plus that column).

    .venv/bin/python bench/bench_server.py [--runs 2000] [--seconds 1.5] [--rounds 6] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import secrets
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import served
from bench_handshake import Http, machine_busy_share, make_fleet
from django_bench import ROOT, setup_postgres_django


def sequential_p50s(port: int, calls: dict[str, tuple[str, str, bytes, dict]], runs: int) -> dict[str, float]:
    """p50 (ms) per call: one keep-alive connection each, the calls taking turns, after a warm-up."""
    conns = {name: http.client.HTTPConnection("127.0.0.1", port) for name in calls}
    samples: dict[str, list[float]] = {name: [] for name in calls}

    def once(name: str) -> float:
        method, path, body, headers = calls[name]
        started = time.perf_counter()
        conns[name].request(method, path, body=body or None, headers=headers)
        response = conns[name].getresponse()
        payload = response.read()
        elapsed = time.perf_counter() - started
        if response.status != 200:
            raise SystemExit(f"{name}: {response.status} {payload[:300]!r}")
        return elapsed * 1000

    for _ in range(50):
        for name in calls:
            once(name)
    for _ in range(runs):
        for name in calls:
            samples[name].append(once(name))
    for conn in conns.values():
        conn.close()
    return {name: statistics.median(values) for name, values in samples.items()}


async def load(
    port: int, seconds: float, concurrency: int, requests: list[tuple[str, str, bytes]]
) -> tuple[int, float]:
    """``concurrency`` keep-alive connections posting ``requests`` round robin for ``seconds``: (count, s)."""
    count, errors = 0, {}
    deadline = time.perf_counter() + seconds
    turn = 0

    async def worker() -> None:
        nonlocal count, turn
        client = Http(port)
        while time.perf_counter() < deadline:
            path, token, body = requests[turn % len(requests)]
            turn += 1
            status, payload = await client.request(path, token, body)
            if status != 200:
                errors[status] = payload[:200]
            count += 1
        client.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    if errors:
        raise SystemExit(f"errors under load: {errors}")
    return count, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=2000, help="sequential requests per endpoint")
    parser.add_argument("--seconds", type=float, default=1.5, help="length of one load round")
    parser.add_argument("--rounds", type=int, default=6, help="load rounds per endpoint, taking turns")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--agents", type=int, default=500)
    parser.add_argument("--workers", type=int, default=None, help="POWERNODE_WORKERS (default: one per core)")
    args = parser.parse_args()

    own_cluster = not os.environ.get("BENCH_DATABASE_URL")
    work = Path(tempfile.mkdtemp(prefix="pn-bench-server-"))
    if own_cluster:
        os.environ["BENCH_PG_VAR_DIR"] = str(work)
        os.environ["PG_PORT"] = str(served.free_port())  # a port nobody else uses right now
    try:
        run(args, work)
    finally:
        from django.db import connections

        connections.close_all()
        if own_cluster:
            env = {**os.environ, "POWERNODE_VAR_DIR": str(work)}
            subprocess.run([str(ROOT / "scripts" / "pg.sh"), "stop"], check=False, env=env)
            cluster = work / "pg" / "cluster"
            if cluster.exists():
                shutil.rmtree(cluster.read_text().strip(), ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


def run(args: argparse.Namespace, work: Path) -> None:
    from cryptography.fernet import Fernet

    os.environ.update(
        POWERNODE_VAR_DIR=str(work),
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(40),
        POWERNODE_ENCRYPTION_KEY=Fernet.generate_key().decode(),
        VAULT_ADDR="",
        VAULT_TOKEN="",
        POWERNODE_LOG_LEVEL="ERROR",
    )
    print(f"machine busy before start: {machine_busy_share():.0%} of {os.cpu_count()} cores (others' work)")
    url = setup_postgres_django("powernode_bench_server")
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.core.management import call_command
    from django.db import connection

    from apps.pki.adapters.local import init_local_ca
    from apps.system.services import PLATFORM_ADMINS, operator_token_create, platform_admins_group_ensure

    call_command("loaddata", "default_catalog", verbosity=0)
    init_local_ca(work / "pki")
    platform_admins_group_ensure()
    user = get_user_model().objects.create_user("bench-operator")  # not a superuser: permissions are looked up
    user.groups.add(Group.objects.get(name=PLATFORM_ADMINS))
    token = operator_token_create(username="bench-operator")
    agents = make_fleet("bench-sv", args.agents)
    writers = make_fleet("bench-sw", args.agents)  # their own instances: the steady ones' rows stay as they are
    print(f"database {url.rsplit('@', 1)[-1]}; {args.agents} steady agents, {args.agents} writing")
    connection.close()

    server, port = served.start(log=work / "server.log", workers=args.workers)
    try:
        workers = len(served.worker_pids(server.pid))
        print(f"scripts/serve.sh: {workers} workers on 127.0.0.1:{port}; {os.cpu_count()} cores")
        bearer = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        p50 = sequential_p50s(port, {
            "bare": ("GET", "/bench/bare", b"", {}),
            "bare_async": ("GET", "/bench/bare-async", b"", {}),
            "action": ("POST", "/api/v1/actions/system_list_modules", b"{}", bearer),
        }, args.runs)
        print(f"sequential p50 over {args.runs} requests each (taking turns): bare view {p50['bare']:.3f} ms, "
              f"bare async view {p50['bare_async']:.3f} ms, system_list_modules {p50['action']:.3f} ms")

        beats = [
            ("/api/v1/agent/heartbeat", t, json.dumps({
                "agent_version": "0.1.0", "runtimes": {"docker": {"phase": "none"}},
            }).encode())
            for _, t in agents
        ]
        writing = [  # each agent's consecutive calls differ: every heartbeat is an UPDATE of its instance
            ("/api/v1/agent/heartbeat", t, json.dumps({
                "agent_version": version, "runtimes": {"docker": {"phase": "none"}},
            }).encode())
            for version in ("0.1.1", "0.1.0")
            for _, t in writers
        ]  # fmt: skip
        bare = [("/bench/bare", "", b"")]
        bare_async = [("/bench/bare-async", "", b"")]
        asyncio.run(load(port, 2.0, args.concurrency, beats))  # warm-up: each agent's first (online) heartbeat
        asyncio.run(load(port, 2.0, args.concurrency, writing))
        totals = {"bare": [0, 0.0], "bare_async": [0, 0.0], "heartbeat": [0, 0.0], "writing": [0, 0.0]}
        for _ in range(args.rounds):
            kinds = (("bare", bare), ("bare_async", bare_async), ("heartbeat", beats), ("writing", writing))
            for name, requests in kinds:
                count, elapsed = asyncio.run(load(port, args.seconds, args.concurrency, requests))
                totals[name][0] += count
                totals[name][1] += elapsed
        rates = {name: count / elapsed for name, (count, elapsed) in totals.items()}
        print(f"concurrency {args.concurrency}, {args.rounds} rounds of {args.seconds:g} s each: bare view "
              f"{rates['bare']:,.0f} requests/s, bare async view {rates['bare_async']:,.0f} requests/s, "
              f"heartbeats {rates['heartbeat']:,.0f}/s, heartbeats each writing liveness {rates['writing']:,.0f}/s")
    finally:
        served.stop(server)
    print(f"ratio action_vs_bare_view {p50['action'] / p50['bare']:.2f}")
    print(f"ratio action_vs_bare_async_view {p50['action'] / p50['bare_async']:.2f}")
    print(f"ratio heartbeat_vs_bare_view {rates['heartbeat'] / rates['bare']:.2f}")
    print(f"rate heartbeats_per_s {rates['heartbeat']:.0f}")
    print(f"ratio heartbeat_writing_vs_bare_view {rates['writing'] / rates['bare']:.2f}")
    print(f"rate heartbeats_writing_per_s {rates['writing']:.0f}")
    print(f"machine busy after: {machine_busy_share():.0%} (others' work; the figures above shared the cores)")


if __name__ == "__main__":
    main()
