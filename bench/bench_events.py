"""recent_events(kind_prefix="system.docker", limit=20) over 1,000,000 mixed events on PostgreSQL.

Run: ``.venv/bin/python bench/bench_events.py [--rows N] [--runs R]``. Target: median <= 10 ms through
the selector (the same function the action calls). Rows are seeded with one INSERT … SELECT.
"""

from __future__ import annotations

import argparse
import statistics
import time

from django_bench import seed_events, setup_postgres_django

KINDS = [
    "system.docker.handshake.wants_cert",
    "system.docker.handshake.ready",
    "system.sdwan.peer.attached",
    "system.instance.provisioned",
    "system.module.assigned",
    "system.sdwan.access_grant.created",
    "system.pki.certificate.issued",
    "system.template.created",
    "system.instance.heartbeat_missed",
    "system.k3s.module.assigned",
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    setup_postgres_django("powernode_bench_events")

    from apps.events.selectors import events_recent

    seconds = seed_events(rows=args.rows, kinds=KINDS)
    # a rare kind, spread over the whole history: the hard case for a newest-first scan
    seconds += seed_events(rows=100, kinds=["system.docker.decommissioned"], every_ms=10_000)
    print(f"seeded {args.rows:,} events in {seconds:.1f}s")

    for prefix, label in [("system.docker", "common prefix (20% of rows)"), ("system.k3s", "rare prefix (10%)"),
                          ("system.pki.certificate", "one kind (10%)"),
                          ("system.docker.decommissioned", "rare kind (100 rows)"), ("", "no prefix")]:
        events_recent(kind_prefix=prefix, limit=20)  # warm the cache
        timings = []
        for _ in range(args.runs):
            t = time.perf_counter()
            rows = events_recent(kind_prefix=prefix, limit=20)
            timings.append((time.perf_counter() - t) * 1000)
        assert len(rows) == 20
        print(
            f"recent_events(kind_prefix={prefix!r}, limit=20) [{label}]: median {statistics.median(timings):.2f} ms, "
            f"p95 {sorted(timings)[int(len(timings) * 0.95)]:.2f} ms over {args.runs} runs"
        )


if __name__ == "__main__":
    main()
