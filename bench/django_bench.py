"""Shared set-up for benchmarks that need Django on PostgreSQL: a fresh database per benchmark."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def setup_postgres_django(dbname: str) -> str:
    """Start the project's throwaway PostgreSQL, recreate ``dbname``, point Django at it, migrate."""
    sys.path.insert(0, str(ROOT))
    base_url = os.environ.get("BENCH_DATABASE_URL") or subprocess.run(
        [str(ROOT / "scripts" / "pg.sh"), "start"], check=True, capture_output=True, text=True
    ).stdout.strip()
    admin_url = base_url.rsplit("/", 1)[0] + "/postgres"
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{dbname}"')
    url = base_url.rsplit("/", 1)[0] + f"/{dbname}"
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "powernode.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return url
