"""Concurrent handshakes on PostgreSQL: two wants_cert for one instance end with one host."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.db import connection

from apps.docker_hosts.models import DockerHost
from apps.pki.models import IssuedCertificate
from tests.agents import AgentClient
from tests.csr import make_csr
from tests.needs import need_postgres

# the Platform admins group is re-made after each flush (post_migrate in apps.system)
pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _postgres_only() -> None:
    """SQLite serialises writers anyway: the race only means something on PostgreSQL."""
    need_postgres()


def _race(token: str, bodies: list[dict[str, Any]]) -> list[tuple[int, dict]]:
    """Post every body at the same moment, each from its own thread and database connection."""
    barrier = threading.Barrier(len(bodies))

    def post(body: dict[str, Any]) -> tuple[int, dict]:
        try:
            client = AgentClient(token)
            barrier.wait(timeout=30)
            return client.handshake(**body)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        return list(pool.map(post, bodies))


def test_two_concurrent_wants_cert_make_one_host(docker_fleet):
    agent = docker_fleet["agent"]
    agent.ok("installing")
    for _round in range(5):
        results = _race(
            docker_fleet["agent_token"], [{"phase": "wants_cert", "csr_pem": make_csr()} for _ in range(2)]
        )
        assert [status for status, _ in results] == [200, 200], results
        assert results[0][1]["host_id"] == results[1][1]["host_id"]
    host = DockerHost.objects.get()
    assert IssuedCertificate.objects.filter(host_id=host.id, kind="platform_client").count() == 1
    assert IssuedCertificate.objects.filter(host_id=host.id, kind="server").count() == 10


def test_many_concurrent_phases_leave_a_consistent_host(docker_fleet):
    agent = docker_fleet["agent"]
    agent.ok("installing")
    results = _race(
        docker_fleet["agent_token"],
        [{"phase": "wants_cert", "csr_pem": make_csr()} for _ in range(6)]
        + [{"phase": "wants_config"} for _ in range(2)],
    )
    cert_answers = [body for status, body in results if "cert_pem" in body]
    assert len(cert_answers) == 6 and len({a["host_id"] for a in cert_answers}) == 1
    for status, body in results:
        # wants_config either saw the host (200) or came before the first certificate (409, names wants_cert)
        assert status == 200 or (status == 409 and body["error"]["details"]["expected_phase"] == "wants_cert")
    assert DockerHost.objects.count() == 1
    agent.ok("wants_config")
    assert agent.ok("ready", version="20.10.24")["status"] == "connected"


def test_concurrent_ready_promotes_once(docker_fleet):
    from apps.events.models import Event

    agent = docker_fleet["agent"]
    agent.ok("installing")
    agent.ok("wants_cert", csr_pem=make_csr())
    agent.ok("wants_config")
    results = _race(
        docker_fleet["agent_token"], [{"phase": "ready", "version": "20.10.24"} for _ in range(4)]
    )
    assert {status for status, _ in results} == {200}
    assert Event.objects.filter(kind="system.docker.provisioned").count() == 1
    assert Event.objects.filter(kind="system.docker.handshake.ready").count() == 1
