"""The admin's event list over 1,000,000 events on PostgreSQL: each filter the page offers, as a request.

Run: ``.venv/bin/python bench/bench_admin_events.py [--rows N] [--runs R]``. Prints the median and p95 of a
whole admin request (Django test client, logged in) and the SQL count queries it made — there must be no
COUNT(*) over the table, only the paginator's bounded one.
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
    "system.pki.certificate.issued",
    "system.instance.online",
    "system.docker.handshake.failed",
    "system.template.created",
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    setup_postgres_django("powernode_bench_admin_events")
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext, setup_test_environment

    from apps.nodes.models import NodeInstance, NodeTemplate

    setup_test_environment()
    template = NodeTemplate.objects.create(name="bench")
    instances = [
        NodeInstance.objects.create(
            name=f"node-{i}", node_template=template, agent_token_prefix=f"p{i}", agent_token_hash="x"
        )
        for i in range(100)
    ]
    seconds = seed_events(rows=args.rows, kinds=KINDS, instance_ids=[str(i.id) for i in instances], hosts=1000)
    print(f"seeded {args.rows:,} events in {seconds:.1f}s")

    user = get_user_model().objects.create_superuser("bench", password="bench")
    client = Client()
    client.force_login(user)
    cases = [
        ({}, "no filter"),
        ({"kind_prefix": "system.docker"}, "kind prefix (37% of rows)"),
        ({"kind_prefix": "system.docker.handshake.failed"}, "one kind (12%)"),
        ({"instance": "node-7"}, "instance by name (1%)"),
        ({"host": "host-42"}, "host id (0.1%)"),
        ({"kind_prefix": "system.docker", "instance": "node-7"}, "prefix + instance"),
        ({"kind_prefix": "system.nothing"}, "prefix matching nothing"),
        ({"p": "50"}, "page 51"),
    ]
    for params, label in cases:
        client.get("/admin/events/event/", params)  # warm
        timings = []
        for _ in range(args.runs):
            t = time.perf_counter()
            response = client.get("/admin/events/event/", params)
            timings.append((time.perf_counter() - t) * 1000)
        assert response.status_code == 200, (params, response.status_code)
        with CaptureQueriesContext(connection) as queries:
            client.get("/admin/events/event/", params)
        counts = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]
        unbounded = [sql for sql in counts if "events_event" in sql and "LIMIT" not in sql.upper()]
        print(
            f"{label:28s} median {statistics.median(timings):7.1f} ms, "
            f"p95 {sorted(timings)[int(len(timings) * 0.95)]:7.1f} ms; "
            f"{len(counts)} count queries, unbounded: {len(unbounded)}"
        )


if __name__ == "__main__":
    main()
