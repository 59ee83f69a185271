"""The watch (issue 13): commit → waiting agent answered, across two platform processes on one PostgreSQL.

Starts two platform processes (``scripts/serve.sh``, one worker each) on a fresh database, N agents
(asyncio + httpx) each holding a watch heartbeat, spread over both processes; then commits ``--changes``
desired-state changes through the service layer in this process (assign / unassign a module to one
agent's template, round robin) and measures, per change, commit returned → that agent's held heartbeat
answered. Prints p50/p99 (goal p99 ≤ 200 ms), the cost of desired_version, and how many agents one
template's change wakes.

    PG_PORT=54420 scripts/pg.sh start            # prints a DATABASE_URL
    BENCH_DATABASE_URL=<that url> .venv/bin/python bench/bench_watch.py [--agents 200] [--changes 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import served  # noqa: E402
from django_bench import ROOT, setup_postgres_django  # noqa: E402

WAIT_S = 50


def start_servers(count: int, log_dir: Path) -> tuple[list[subprocess.Popen], list[str]]:
    """``count`` platform processes, each the shipped server (scripts/serve.sh) with one worker."""
    env = {"POWERNODE_LOG_LEVEL": "ERROR"}
    procs, urls = [], []
    for i in range(count):
        proc, port = served.start(log=log_dir / f"server-{i}.log", env=env, workers=1, bare=False)
        procs.append(proc)
        urls.append(f"http://127.0.0.1:{port}")
    return procs, urls


async def wait_up(urls: list[str]) -> None:
    import httpx

    async with httpx.AsyncClient() as client:
        for url in urls:
            for _ in range(300):
                try:
                    await client.get(f"{url}/api/v1/schema/")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)


class Agent:
    """One agent's watch loop: heartbeat with the version it has, record when a changed answer arrives."""

    def __init__(self, client, url: str, token: str) -> None:  # noqa: ANN001
        self.client, self.url, self.token = client, url, token
        self.version: str | None = None
        self.changes: list[float] = []  # perf_counter() of each answer with a new version
        self.changed = asyncio.Event()
        self.waiting = asyncio.Event()
        self.errors: list[str] = []

    async def run(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        while True:
            body = {"agent_version": "bench", "runtimes": {}}
            if self.version is not None:
                body |= {"desired_version": self.version, "wait_s": WAIT_S}
            request = self.client.post(f"{self.url}/api/v1/agent/heartbeat", json=body, headers=headers)
            if self.version is not None:
                asyncio.get_running_loop().call_later(0.05, self.waiting.set)  # held by now (approximately)
            try:
                response = await request
                response.raise_for_status()
            except Exception as exc:  # noqa: BLE001 - counted and retried, as the agent does
                self.errors.append(repr(exc))
                self.waiting.clear()
                await asyncio.sleep(random.uniform(0, 1))
                continue
            answered = time.perf_counter()
            self.waiting.clear()
            version = response.json()["desired_version"]
            if self.version is not None and version != self.version:
                self.changes.append(answered)
                self.changed.set()
            self.version = version


def seed(agents: int, per_template: int) -> tuple[list[dict], object]:
    """``agents`` instances on a template each, then two templates with ``per_template`` instances each."""
    from apps.nodes.services import instance_provision, template_create
    from powernode.actors import Actor
    from tests.factories import ModuleFactory

    actor = Actor.system()
    shared = [template_create(name=f"bench-shared-{x}", actor=actor) for x in "ab"]
    rows = []
    for i in range(agents + 2 * per_template):
        template = template_create(name=f"bench-t{i}", actor=actor) if i < agents else shared[i % 2]
        provisioned = instance_provision(template_id=str(template.id), name=f"bench-n{i}", actor=actor)
        rows.append({"template_id": str(template.id), "token": provisioned.agent_token})
    return rows, ModuleFactory(name="bench-module")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def main(args: argparse.Namespace) -> None:
    import httpx
    from asgiref.sync import sync_to_async

    from apps.modules.services import module_assign_to_template, module_unassign_from_template
    from powernode.actors import Actor

    rows, module = await sync_to_async(seed)(args.agents, args.per_template)
    log_dir = Path(tempfile.mkdtemp(prefix="pn-bench-watch-"))
    procs, urls = start_servers(2, log_dir)
    try:
        await wait_up(urls)
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
        async with httpx.AsyncClient(timeout=WAIT_S + 15, limits=limits) as client:
            agents = [Agent(client, urls[i % 2], row["token"]) for i, row in enumerate(rows)]
            tasks = [asyncio.create_task(a.run()) for a in agents]
            await asyncio.sleep(3)  # every agent had its first answer and holds a watch
            actor, assigned = Actor.system(), set()

            def change(template_id: str) -> None:
                if template_id in assigned:
                    module_unassign_from_template(template_id=template_id, module_id=str(module.id), actor=actor)
                    assigned.discard(template_id)
                else:
                    module_assign_to_template(template_id=template_id, module_id=str(module.id), actor=actor)
                    assigned.add(template_id)

            commit = sync_to_async(change, thread_sensitive=True)
            latencies = []
            for i in range(args.changes):
                k = i % args.agents
                agent = agents[k]
                await agent.waiting.wait()
                agent.changed.clear()
                await commit(rows[k]["template_id"])
                committed = time.perf_counter()
                await asyncio.wait_for(agent.changed.wait(), 10)
                latencies.append(agent.changes[-1] - committed)

            # one template, several instances: only they wake
            await asyncio.sleep(1)
            template_a = rows[args.agents]["template_id"]
            before = [len(a.changes) for a in agents]
            await commit(template_a)
            await asyncio.sleep(2)
            woken = [i for i, (a, n) in enumerate(zip(agents, before, strict=True)) if len(a.changes) > n]
            on_a = [i for i, row in enumerate(rows) if row["template_id"] == template_a]
            for task in tasks:
                task.cancel()
    finally:
        for proc in procs:
            served.stop(proc)

    errors = [e for a in agents for e in a.errors]
    if errors:
        print(f"heartbeat errors (retried): {len(errors)}, e.g. {errors[:3]}")
    ms = [1000 * x for x in latencies]
    print(f"agents waiting: {args.agents} over 2 server processes; changes committed: {len(ms)}")
    print(
        f"commit → waiting agent answered: p50 {statistics.median(ms):.1f} ms, p90 {percentile(ms, 0.9):.1f} ms, "
        f"p99 {percentile(ms, 0.99):.1f} ms, max {max(ms):.1f} ms (goal p99 ≤ 200 ms)"
    )
    print(
        f"one template's change with {args.per_template} instances on it ({args.per_template} on another, "
        f"{len(rows)} waiting in all): {len(woken)} agents woken, exactly that template's: {woken == on_a}"
    )


def version_cost() -> None:
    from apps.nodes.heartbeat import desired_version

    answer = {
        "instance_id": "01a2371c-ede2-71fc-89ac-a30ffbd433d8",
        "sdwan": [{"network_id": "n", "network_name": "lab-a", "peer_id": "p", "prefix": "fd00:abcd:1::/64",
                   "overlay_address": "fd00:abcd:1::2",
                   "hub": {"public_key": "k" * 44, "endpoint": "[fd00::1]:51820", "overlay_address": "fd00::1"}}] * 2,
        "assignments": [{"module_id": "m", "name": "docker-engine", "runtime": "docker"}],
        "runtime_orders": [{"runtime": "docker", "action": "provision", "host_id": "h"}],
        "heartbeat_interval_s": 60,
    }  # fmt: skip
    runs = 20000
    started = time.perf_counter()
    for _ in range(runs):
        desired_version(answer)
    print(f"desired_version of a 2-network answer: {1e6 * (time.perf_counter() - started) / runs:.1f} µs")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--changes", type=int, default=1000)
    parser.add_argument("--per-template", type=int, default=20)
    arguments = parser.parse_args()
    setup_postgres_django("bench_watch")
    sys.path.insert(0, str(ROOT))
    version_cost()
    asyncio.run(main(arguments))
