"""The platform behind HAProxy: heartbeats/s and handshakes/s with 1 and with 3 platform processes, and the
time from a SIGKILL of one process to HAProxy routing around it.

The cluster is tests/cluster/harness.py's (the `cluster` tests' own): a fresh PostgreSQL database, one
``bao server -dev`` (VaultCaAdapter: two certificates signed by OpenBao per handshake), three processes
served by scripts/serve.sh (one worker each) and HAProxy with /readyz checks (inter 500ms fall 2 rise 1).
"1 process" puts the other two in maintenance on HAProxy's stats socket (same cluster, same database).
Simulated agents (asyncio, raw HTTP/1.1) run in this process. On a 2-core machine three processes are not
expected to be faster than one: the point is that they lose nothing and fail over. Figures only, no targets.

Run: ``.venv/bin/python bench/bench_cluster.py [--seconds 10] [--concurrency 16] [--agents 300] [--handshakes 300]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_handshake import machine_busy_share  # noqa: E402

from tests.cluster.harness import (  # noqa: E402
    Backoff,
    Cluster,
    Http,
    SimAgent,
    Tally,
    make_agents,
    running_cluster,
    why_cluster_cannot_run,
)

NO_RETRY = Backoff(base_s=0.05, cap_s=0.5)


async def heartbeats(port: int, agents: list[SimAgent], seconds: float, concurrency: int) -> dict:
    tally, latencies, next_agent = Tally(), [], 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal next_agent
        http = Http(port)
        while time.perf_counter() < deadline:
            agent = agents[next_agent % len(agents)]
            next_agent += 1
            started = time.perf_counter()
            await agent.heartbeat(http, tally, backoff=NO_RETRY)
            latencies.append(time.perf_counter() - started)
        http.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return {"count": len(latencies), "elapsed": time.perf_counter() - started, "lat": latencies, "tally": tally}


async def handshakes(port: int, agents: list[SimAgent], concurrency: int) -> dict:
    queue, tally, durations = list(reversed(agents)), Tally(), []

    async def worker() -> None:
        http = Http(port)
        while queue:
            agent = queue.pop()
            started = time.perf_counter()
            await agent.walk(http, tally, backoff=NO_RETRY)
            durations.append(time.perf_counter() - started)
        http.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return {"count": len(durations), "elapsed": time.perf_counter() - started, "dur": durations, "tally": tally}


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000 if ordered else float("nan")


def route_to(cluster: Cluster, live: int) -> None:
    """Only the first ``live`` processes take traffic; the others are in maintenance on HAProxy."""
    for i, proc in enumerate(cluster.processes):
        state = "ready" if i < live else "maint"
        cluster.haproxy.command(f"set server platform/{proc.name} state {state}")
    for proc in cluster.processes[:live]:
        cluster.haproxy.wait_status(proc.name, "UP", timeout=30)


async def failover(cluster: Cluster, agents: list[SimAgent], concurrency: int) -> dict:
    """Heartbeat load through HAProxy; SIGKILL one process; when does HAProxy mark it DOWN, when does the last
    request fail; then start it again: when is it UP."""
    port, victim, haproxy = cluster.haproxy.port, cluster.processes[1], cluster.haproxy
    stop, failures, next_agent = asyncio.Event(), [], 0
    tally = Tally()

    async def worker() -> None:
        nonlocal next_agent
        http = Http(port)
        while not stop.is_set():
            agent = agents[next_agent % len(agents)]
            next_agent += 1
            mine = Tally()  # this request's attempts only (the workers share ``tally``)
            await agent.heartbeat(http, mine, backoff=NO_RETRY)
            failures.extend([time.monotonic()] * mine.failed)
            tally.total += mine.total
            tally.failed += mine.failed
            tally.reasons.update(mine.reasons)
        http.close()

    tasks = [asyncio.create_task(worker()) for _ in range(concurrency)]
    await asyncio.sleep(3)  # steady load on three processes
    requests_before = tally.total
    killed = time.monotonic()
    down_at: list[float] = []

    def watch_down() -> None:
        haproxy.wait_status(victim.name, "DOWN", timeout=30)
        down_at.append(time.monotonic())

    watcher = threading.Thread(target=watch_down)
    watcher.start()
    victim.kill()
    await asyncio.to_thread(watcher.join)
    await asyncio.sleep(3)
    restarted = time.monotonic()
    victim.start()
    await asyncio.to_thread(haproxy.wait_status, victim.name, "UP", 90)
    up_s = time.monotonic() - restarted
    await asyncio.sleep(2)
    stop.set()
    await asyncio.gather(*tasks)
    after_kill = [t - killed for t in failures if t >= killed]
    return {
        "down_s": down_at[0] - killed,
        "last_failure_s": max(after_kill) if after_kill else 0.0,
        "failed_after_kill": len(after_kill),
        "requests_after_kill": tally.total - requests_before,
        "up_s": up_s,
        "tally": tally,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="heartbeat run length per cluster size")
    parser.add_argument("--agents", type=int, default=300, help="instances sending heartbeats")
    parser.add_argument("--handshakes", type=int, default=300, help="instances walking the handshake, per size")
    parser.add_argument("--concurrency", type=int, default=16, help="simultaneous agent connections")
    args = parser.parse_args()
    reason = why_cluster_cannot_run()
    if reason:
        raise SystemExit(reason)
    print(f"machine busy before start: {machine_busy_share():.0%} of {os.cpu_count()} cores (others' work)")
    work = Path(tempfile.mkdtemp(prefix="pn-bench-cluster-"))
    started = time.perf_counter()
    total = args.agents + 2 * args.handshakes
    with (
        contextlib.ExitStack() as cleanup,
        running_cluster(work, processes=3, agents=total, database=f"powernode_bench_cluster_{os.getpid()}") as cluster,
    ):
        cleanup.callback(shutil.rmtree, work, ignore_errors=True)
        agents = make_agents(cluster.seed)
        beat, shakes = agents[: args.agents], agents[args.agents :]
        print(
            f"cluster up in {time.perf_counter() - started:.0f} s: 3 processes (scripts/serve.sh, 1 worker each) "
            f"behind HAProxy on 127.0.0.1:{cluster.haproxy.port}, PostgreSQL, OpenBao; {total} instances; "
            f"{args.concurrency} concurrent agent connections; {os.cpu_count()} cores shared with other work"
        )
        port = cluster.haproxy.port
        asyncio.run(heartbeats(port, beat, 2.0, args.concurrency))  # warm-up: pools, first (online) heartbeats
        for size, walkers in ((1, shakes[: args.handshakes]), (3, shakes[args.handshakes :])):
            route_to(cluster, size)
            hb = asyncio.run(heartbeats(port, beat, args.seconds, args.concurrency))
            lat = [x for x in hb["lat"]]
            print(
                f"{size} process{'es' if size > 1 else ''}: heartbeats {hb['count'] / hb['elapsed']:,.0f}/s "
                f"(p50 {statistics.median(lat) * 1000:.1f} ms, p99 {p(lat, 0.99):.1f} ms; {hb['tally'].failed} failed)"
            )
            hs = asyncio.run(handshakes(port, walkers, args.concurrency))
            print(
                f"{size} process{'es' if size > 1 else ''}: handshakes {hs['count'] / hs['elapsed']:,.0f}/s "
                f"(installing -> ready, 4 requests, 2 OpenBao signatures each; one walk p50 "
                f"{statistics.median(hs['dur']) * 1000:.0f} ms, p99 {p(hs['dur'], 0.99):.0f} ms; "
                f"{hs['tally'].failed} failed)"
            )
        route_to(cluster, 3)
        fo = asyncio.run(failover(cluster, beat, args.concurrency))
        print(
            f"SIGKILL of p2 under heartbeat load: HAProxy marked it DOWN after {fo['down_s']:.2f} s; last failed "
            f"request {fo['last_failure_s']:.2f} s after the kill ({fo['failed_after_kill']} failed of "
            f"{fo['requests_after_kill']} requests from the kill to the end); restarted p2 UP after "
            f"{fo['up_s']:.1f} s"
        )
        print(f"  failures: {fo['tally'].line()}")
    print(f"machine busy after: {machine_busy_share():.0%} (others' work; the rates above shared the cores)")


if __name__ == "__main__":
    main()
