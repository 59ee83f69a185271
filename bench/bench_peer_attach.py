"""Attaching a peer to a network with 10,000 peers vs attaching the 11th, on PostgreSQL.

Run: ``.venv/bin/python bench/bench_peer_attach.py [--peers N] [--samples S]``. Target: the ratio
(large / small) at most 2 — allocation takes the network's counter, it never scans the addresses.
"""

from __future__ import annotations

import argparse
import statistics
import time

from django_bench import setup_postgres_django


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--peers", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=30)
    args = parser.parse_args()
    setup_postgres_django("powernode_bench_attach")
    from apps.nodes.models import NodeInstance
    from apps.nodes.services import template_create
    from apps.sdwan.services import network_create, peer_attach
    from powernode.actors import Actor

    actor = Actor.system()
    template = template_create(name="bench", actor=actor)

    def fresh_instances(prefix: str, n: int) -> list[NodeInstance]:
        rows = [
            NodeInstance(name=f"{prefix}-{i}", node_template=template, agent_token_prefix=f"{prefix[:4]}{i:08d}",
                         agent_token_hash="x")
            for i in range(n)
        ]
        return NodeInstance.objects.bulk_create(rows, batch_size=2000)

    def timed_attaches(network, instances) -> list[float]:  # noqa: ANN001
        timings = []
        for inst in instances:
            t = time.perf_counter()
            peer_attach(network_id=network.id, node_instance_id=inst.id, actor=actor)
            timings.append((time.perf_counter() - t) * 1000)
        return timings

    # small: a network with 10 peers, then S attaches timed from the 11th on (each on its own network)
    small = []
    for s in range(args.samples):
        net = network_create(name=f"small-{s}", actor=actor)
        timed_attaches(net, fresh_instances(f"s{s}w", 9))  # hub + 9 = 10 peers
        small += timed_attaches(net, fresh_instances(f"s{s}m", 1))

    big = network_create(name="big", actor=actor)
    started = time.perf_counter()
    timed_attaches(big, fresh_instances("bigfill", args.peers - 1))
    print(f"filled a network with {args.peers:,} peers in {time.perf_counter() - started:.1f}s")
    large = timed_attaches(big, fresh_instances("bigm", args.samples))

    s_med, l_med = statistics.median(small), statistics.median(large)
    print(f"attach the 11th peer: median {s_med:.2f} ms over {len(small)}")
    print(f"attach with {args.peers:,} peers: median {l_med:.2f} ms over {len(large)}")
    print(f"ratio large/small: {l_med / s_med:.2f} (target <= 2)")


if __name__ == "__main__":
    main()
