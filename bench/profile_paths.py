"""Where the time of one request goes: cProfile of the action and heartbeat paths, in process, through the
ASGI application the shipped server runs (powernode.asgi, the same handler, middleware and views; no
socket). Prints the top functions by cumulative and own time. On PostgreSQL (scripts/pg.sh) with production
settings, like bench_server.py.

    .venv/bin/python bench/profile_paths.py [--requests 2000] [--path action|heartbeat|bare|handshake]

``--path handshake``: each "request" is one agent's whole handshake (installing -> wants_cert -> wants_config
-> ready: four requests, two certificates), with the local CA, the daemon probe at ready off as in
bench_handshake.py.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import functools
import json
import os
import pstats
import secrets
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from django_bench import ROOT, setup_postgres_django


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--path", choices=["action", "heartbeat", "bare", "handshake"], default="action")
    parser.add_argument("--top", type=int, default=35)
    parser.add_argument("--sync-part", action="store_true", help="profile only what runs in the worker thread")
    parser.add_argument(
        "--writing", action="store_true", help="heartbeat: each one writes its instance's row (the 60 s interval's)"
    )
    parser.add_argument(
        "--whole-chain",
        action="store_true",
        help="no profile: the shipped handler and one that sends every request through the whole middleware "
        "chain (no sessionless chain) take turns in eight blocks; prints each one's median",
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="pn-profile-"))
    own_cluster = not os.environ.get("BENCH_DATABASE_URL")
    if own_cluster:
        os.environ["BENCH_PG_VAR_DIR"] = str(work)
        os.environ["PG_PORT"] = "54417"
    from cryptography.fernet import Fernet

    os.environ.update(
        POWERNODE_VAR_DIR=str(work), DJANGO_DEBUG="false", DJANGO_SECRET_KEY=secrets.token_urlsafe(40),
        POWERNODE_ENCRYPTION_KEY=Fernet.generate_key().decode(), VAULT_ADDR="", VAULT_TOKEN="",
        POWERNODE_LOG_LEVEL="ERROR", DJANGO_ALLOWED_HOSTS="127.0.0.1", DJANGO_SETTINGS_MODULE="yardstick_settings",
        POWERNODE_DOCKER_PROBE_INTERVAL_S="0", POWERNODE_DOCKER_READY_PROBE="false",
    )  # fmt: skip
    try:
        setup_postgres_django("powernode_profile")
        from bench_handshake import make_fleet
        from django.contrib.auth import get_user_model
        from django.contrib.auth.models import Group
        from django.core.management import call_command
        from django.db import connections

        from apps.system.services import PLATFORM_ADMINS, operator_token_create, platform_admins_group_ensure

        call_command("loaddata", "default_catalog", verbosity=0)
        platform_admins_group_ensure()
        get_user_model().objects.create_user("bench-operator").groups.add(Group.objects.get(name=PLATFORM_ADMINS))
        token = operator_token_create(username="bench-operator")
        agents = make_fleet("prof", 50)
        if args.path == "handshake":  # one fresh agent per walk (plus the warm-up's)
            from apps.pki.adapters.local import init_local_ca
            from tests.csr import make_csr

            init_local_ca(work / "pki")
            walkers = [(t, make_csr(common_name="bench-agent")) for _, t in make_fleet("walk", 2 * args.requests + 200)]
        connections.close_all()
        from powernode.asgi import application
        from tests.asgi import asgi_request  # ROOT is on sys.path once Django is set up

        if args.path == "action":
            requests = [("POST", "/api/v1/actions/system_list_modules", b"{}", token)]
        elif args.path == "bare":
            requests = [("GET", "/bench/bare", b"", "")]
        elif args.path == "heartbeat":  # --writing: each agent's calls alternate its version, each is an UPDATE
            versions = ("0.1.1", "0.1.0") if args.writing else ("0.1.0",)
            requests = [
                ("POST", "/api/v1/agent/heartbeat", json.dumps({"agent_version": v, "runtimes": runtimes}).encode(), t)
                for runtimes in [{"docker": {"phase": "none"}}]
                for v in versions
                for _, t in agents
            ]
        else:
            requests = []
            for t, csr in walkers:
                for phase, extra in (
                    ("installing", {}), ("wants_cert", {"csr_pem": csr}), ("wants_config", {}),
                    ("ready", {"version": "20.10.24"}),
                ):  # fmt: skip
                    body = json.dumps({"runtime": "docker", "phase": phase, **extra}).encode()
                    requests.append(("POST", "/api/v1/runtime/handshake", body, t))
        per_item = 4 if args.path == "handshake" else 1

        sent = 0

        async def run(n: int, app: Any = application) -> float:
            nonlocal sent
            started = time.perf_counter()
            for _ in range(n * per_item):
                method, path, body, tok = requests[sent % len(requests)]
                sent += 1
                headers = [("host", "127.0.0.1"), ("content-length", str(len(body)))]
                headers.append(("content-type", "application/json"))
                if tok:
                    headers.append(("authorization", f"Bearer {tok}"))
                status, _, _ = await asgi_request(app, method, path, body, headers)
                assert status == 200, status
            return (time.perf_counter() - started) / n * 1000

        if args.sync_part:  # the part that runs in a worker thread (cProfile sees only the thread it runs in)
            from django.test import RequestFactory

            from apps.docker_hosts.views import RuntimeHandshakeView
            from apps.system import views

            handshake_view = RuntimeHandshakeView.as_view()

            def one(i: int) -> None:
                nonlocal sent
                if args.path == "handshake":  # each walk once: the next request in order, four per walk
                    for _ in range(per_item):
                        method, path, body, tok = requests[sent]
                        sent += 1
                        request = RequestFactory().generic(
                            method, path, body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {tok}"
                        )
                        response = handshake_view(request)
                        assert response.status_code == 200, response.content
                        connections.close_all()
                    return
                method, path, body, tok = requests[i % len(requests)]
                request = RequestFactory().generic(
                    method, path, body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {tok}"
                )
                if args.path == "action":
                    response = views._run_bearer_action(request, path.rsplit("/", 1)[1], tok)
                else:
                    from apps.nodes.agent_views import _heartbeat_step

                    _heartbeat_step(request, None)
                    response = None
                assert response is None or response.status_code == 200
                connections.close_all()  # what db_call does after each call (the pool takes it back)

            for i in range(200):
                one(i)
            started = time.perf_counter()
            for i in range(args.requests):
                one(i)
            print(f"{args.path} (worker-thread part): {(time.perf_counter() - started) / args.requests * 1000:.3f} ms")
            profile = cProfile.Profile()
            profile.enable()
            for i in range(args.requests):
                one(i)
            profile.disable()
            stats = pstats.Stats(profile)
            stats.sort_stats("cumulative").print_stats(args.top)
            stats.sort_stats("tottime").print_stats(args.top)
            if os.environ.get("PROFILE_CALLERS"):
                stats.print_callers(os.environ["PROFILE_CALLERS"])
            return

        async def whole_chain_ab() -> None:
            from django.core.handlers.base import BaseHandler

            from powernode.asgi import django_application
            from powernode.handlers import ASGIHandler

            whole = ASGIHandler()
            whole.get_response_async = functools.partial(BaseHandler.get_response_async, whole)  # never sessionless
            apps = {"shipped": django_application, "whole chain": whole}
            wall: dict[str, list[float]] = {name: [] for name in apps}
            cpu: dict[str, list[float]] = {name: [] for name in apps}
            per_block = max(args.requests // 8, 1)
            for app in apps.values():
                await run(200, app)  # warm-up
            for block in range(8):
                for name in sorted(apps, reverse=block % 2 == 1):  # alternating who goes first
                    cpu_started = time.process_time()
                    wall[name].append(await run(per_block, apps[name]))
                    cpu[name].append((time.process_time() - cpu_started) / per_block * 1000)
            for name in apps:
                print(
                    f"{args.path} {name}: median {statistics.median(wall[name]):.3f} ms per request in process, "
                    f"{statistics.median(cpu[name]):.3f} ms of this process's CPU (PostgreSQL's not counted)"
                )

        async def both() -> None:
            await run(200)  # warm-up
            plain = await run(args.requests)
            profile = cProfile.Profile()
            profile.enable()
            await run(args.requests)
            profile.disable()
            print(f"{args.path}: {plain:.3f} ms per request in process (no socket, not profiled)")
            stats = pstats.Stats(profile)
            stats.sort_stats("cumulative").print_stats(args.top)
            stats.sort_stats("tottime").print_stats(args.top)

        asyncio.run(whole_chain_ab() if args.whole_chain else both())
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


if __name__ == "__main__":
    main()
