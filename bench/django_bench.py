"""Shared set-up for benchmarks that need Django on PostgreSQL: a fresh database per benchmark."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def setup_postgres_django(dbname: str) -> str:
    """Start the project's throwaway PostgreSQL, recreate ``dbname``, point Django at it, migrate."""
    sys.path.insert(0, str(ROOT))
    # the checkout's shared cluster (its password and directory are kept in var/pg), whatever
    # POWERNODE_VAR_DIR the benchmark gives Django; BENCH_PG_VAR_DIR names another cluster's state
    pg_env = {**os.environ, "POWERNODE_VAR_DIR": os.environ.get("BENCH_PG_VAR_DIR") or str(ROOT / "var")}
    base_url = os.environ.get("BENCH_DATABASE_URL") or subprocess.run(
        [str(ROOT / "scripts" / "pg.sh"), "start"], check=True, capture_output=True, text=True, env=pg_env
    ).stdout.strip()
    admin_url = base_url.rsplit("/", 1)[0] + "/postgres"
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{dbname}"')
    url = base_url.rsplit("/", 1)[0] + f"/{dbname}"
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "powernode.settings")
    # production settings (DEBUG off: it keeps every SQL query in memory), with throwaway keys
    from cryptography.fernet import Fernet

    os.environ.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(50))
    os.environ.setdefault("POWERNODE_ENCRYPTION_KEY", Fernet.generate_key().decode())
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return url


def seed_events(
    *, rows: int, kinds: list[str], instance_ids: list[str] | None = None, hosts: int = 0, every_ms: int = 1
) -> float:
    """Insert ``rows`` events with one INSERT … SELECT (kinds round-robin, one every ``every_ms`` back in
    time, optionally spread over instances and ``hosts`` host ids); returns the seconds it took."""
    import time

    from django.db import connection

    kind_array = "ARRAY[" + ",".join(f"'{k}'" for k in kinds) + "]"
    if instance_ids:
        ids = "ARRAY[" + ",".join(f"'{i}'::uuid" for i in instance_ids) + "]"
        instance = f"({ids})[1 + (i %% {len(instance_ids)})]"
    else:
        instance = "NULL"
    host = f"'host-' || (i %% {hosts})" if hosts else "''"
    started = time.perf_counter()
    with connection.cursor() as cur:
        # ids are random uuids here: only their uniqueness matters to the queries measured
        cur.execute(
            f"""
            INSERT INTO events_event (id, kind, occurred_at, actor, instance_id, host_id, data)
            SELECT gen_random_uuid(), ({kind_array})[1 + (i %% {len(kinds)})],
                   now() - (i * {every_ms} || ' milliseconds')::interval, 'bench', {instance}, {host}, '{{}}'::jsonb
            FROM generate_series(1, %s) AS i
            """,
            [rows],
        )
        cur.execute("ANALYZE events_event")
    return time.perf_counter() - started
