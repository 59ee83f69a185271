"""GET /metrics (DESIGN §7): Prometheus text, counted where things happen, right across worker processes."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

import powernode
from tests.csr import make_csr
from tests.servers import production_env, serve, setup_platform


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """(sample name, sorted labels) → value."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def scrape(**headers: str) -> dict:
    response = Client().get("/metrics", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    return samples(response.content.decode())


def value(seen: dict, name: str, **labels: str) -> float:
    return seen.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.mark.django_db
def test_metrics_show_the_version_and_the_fleet_read_at_scrape_time(pending_host):
    pending_host["agent"].heartbeat_ok()
    seen = scrape()
    assert value(seen, "powernode_build_info", version=powernode.__version__) == 1
    assert value(seen, "powernode_docker_hosts", status="pending") == 1
    assert value(seen, "powernode_docker_hosts", status="connected") == 0  # every status, zero included
    assert value(seen, "powernode_instances", heartbeat="fresh") == 1
    assert value(seen, "powernode_instances", heartbeat="stale") == 0
    assert value(seen, "powernode_outbox_pending") == 0


@pytest.mark.django_db
def test_actions_heartbeats_handshakes_and_signatures_are_counted(api, agent, docker_fleet):
    before = scrape()
    api.ok("system_list_modules")
    assert api.call("system_provision_instance", {"template_id": "not-a-uuid", "name": "x"})[0] == 400
    agent.heartbeat_ok()
    agent.ok("installing")
    agent.ok("wants_cert", csr_pem=make_csr())
    after = scrape()

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("powernode_action_seconds_count", action="system_list_modules", result="ok") == 1
    assert grew("powernode_action_seconds_count", action="system_provision_instance", result="refused") == 1
    assert grew("powernode_heartbeats_total", result="ok") == 1
    assert grew("powernode_handshakes_total", runtime="docker", phase="installing", result="ok") == 1
    assert grew("powernode_handshakes_total", runtime="docker", phase="wants_cert", result="ok") == 1
    assert grew("powernode_ca_sign_seconds_count", adapter="LocalCaAdapter", usage="server") == 1


@pytest.mark.django_db
def test_a_refused_heartbeat_is_counted_as_refused():
    before = scrape()
    response = Client().post("/api/v1/agent/heartbeat", {"agent_version": "1"}, content_type="application/json")
    assert response.status_code == 401
    assert value(scrape(), "powernode_heartbeats_total", result="refused") - value(
        before, "powernode_heartbeats_total", result="refused"
    ) == 1


@pytest.mark.django_db
def test_a_metrics_token_is_required_when_set(settings):
    settings.POWERNODE_METRICS_TOKEN = "scrape-secret"
    for header in ({}, {"HTTP_AUTHORIZATION": "Bearer wrong"}, {"HTTP_AUTHORIZATION": "Basic scrape-secret"}):
        response = Client().get("/metrics", **header)
        assert response.status_code == 401
        assert response.json()["error"]["type"] == "NotAuthenticated"
        assert response["WWW-Authenticate"].startswith("Bearer")
    assert scrape(HTTP_AUTHORIZATION="Bearer scrape-secret")


def test_two_server_processes_report_the_sum_of_both(tmp_path: Path):
    """Multiprocess mode: 3 actions and 2 heartbeats on one process, 2 and 3 on the other; each says 5 and 5."""
    metrics_dir = tmp_path / "metrics"
    shutil.rmtree(metrics_dir, ignore_errors=True)  # as the service does at start
    metrics_dir.mkdir()
    env = production_env(tmp_path, PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))
    token = setup_platform(env)
    with serve(env, tmp_path, count=2) as (a, b):
        operator = {"Authorization": f"Bearer {token}"}
        template = httpx.post(
            f"{a.url}/api/v1/actions/system_create_node_template", json={"name": "metrics"}, headers=operator
        ).json()["template"]
        provisioned = httpx.post(
            f"{a.url}/api/v1/actions/system_provision_instance",
            json={"template_id": template["id"], "name": "metrics-1"},
            headers=operator,
        ).json()
        agent = {"Authorization": f"Bearer {provisioned['agent_token']}"}
        for server, actions, beats in ((a, 3, 2), (b, 2, 3)):
            for _ in range(actions):
                assert httpx.get(f"{server.url}/api/v1/actions/", headers=operator).status_code == 200
                answer = httpx.post(f"{server.url}/api/v1/actions/system_list_modules", json={}, headers=operator)
                assert answer.status_code == 200, answer.text
            for _ in range(beats):
                answer = httpx.post(f"{server.url}/api/v1/agent/heartbeat", json={"agent_version": "t"}, headers=agent)
                assert answer.status_code == 200, answer.text
        for server in (a, b):
            seen = samples(httpx.get(f"{server.url}/metrics").text)
            assert value(seen, "powernode_action_seconds_count", action="system_list_modules", result="ok") == 5
            assert value(seen, "powernode_heartbeats_total", result="ok") == 5
            assert value(seen, "powernode_instances", heartbeat="fresh") == 1
            assert value(seen, "powernode_build_info", version=powernode.__version__) == 1
