"""The probe across platform processes on PostgreSQL: while another session holds the probe's advisory lock,
a round in this process probes nothing; once it is released, this process probes."""

from __future__ import annotations

import psycopg
import pytest
from django.db import connection

from apps.docker_hosts.services.probe import ADVISORY_LOCK_KEY, docker_probe_locked_round
from tests.needs import need_postgres

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_one_process_probes_at_a_time():
    need_postgres()
    s = connection.settings_dict
    with psycopg.connect(
        host=s["HOST"], port=s["PORT"], user=s["USER"], password=s["PASSWORD"], dbname=s["NAME"], autocommit=True
    ) as other:
        other.execute("SELECT pg_advisory_lock(%s)", [ADVISORY_LOCK_KEY])
        assert docker_probe_locked_round() is None  # the other process probes this round
        other.execute("SELECT pg_advisory_unlock(%s)", [ADVISORY_LOCK_KEY])
    counts = docker_probe_locked_round()
    assert counts is not None and counts["probed"] == 0
    # this process released its lock after the round: another session can take it at once
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [ADVISORY_LOCK_KEY])
        assert cursor.fetchone()[0] is True
        cursor.execute("SELECT pg_advisory_unlock(%s)", [ADVISORY_LOCK_KEY])
