"""The Docker host page: timeline, troubleshooting hint, live state JSON, containers (daemon errors shown)."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from apps.docker_hosts.models import DockerHost
from tests.admin.conftest import messages_of


def host_url(host_id: str, suffix: str = "change/") -> str:
    return f"/admin/docker_hosts/dockerhost/{host_id}/{suffix}"


def test_pending_host_page_shows_the_timeline_and_polls(root_client, pending_host):
    response = root_client.get(host_url(pending_host["host_id"]))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="pn-status"' in html and ">pending<" in html
    assert 'data-pn-poll="/admin/docker_hosts/dockerhost/' in html
    states = {p.key: p.state for p in response.context["pn_timeline"]}
    assert states == {
        "installing": "done",
        "cert_signed": "done",
        "config_sent": "current",
        "connected": "todo",
    }
    assert "system.docker.handshake.cert_signed" in html
    assert "Waiting for the agent to ask for its daemon config" in html


def test_state_json_follows_the_handshake(root_client, pending_host):
    url = host_url(pending_host["host_id"], "state.json")
    before = root_client.get(url).json()
    assert before["status"] == "pending" and before["refresh"] is True
    pending_host["agent"].ok("wants_config")
    pending_host["agent"].ok("ready", version="20.10.24")
    after = root_client.get(url).json()
    assert after["status"] == "connected" and after["refresh"] is False
    assert after["signature"] != before["signature"]


def test_connected_host_with_unreachable_daemon_shows_the_error_not_a_500(root_client, pending_host):
    agent = pending_host["agent"]
    agent.ok("wants_config")
    agent.ok("ready", version="20.10.24")
    response = root_client.get(host_url(pending_host["host_id"]))
    assert response.status_code == 200
    assert response.context["pn_daemon_error"].startswith("DockerDaemonError")
    assert any("Could not read the containers" in m for m in messages_of(response))
    html = response.content.decode()
    assert 'id="pn-daemon-error"' in html and "data-pn-poll" not in html
    assert {p.key: p.state for p in response.context["pn_timeline"]}["connected"] == "done"


def test_a_host_waiting_too_long_is_flagged_stuck(root_client, pending_host, settings):
    settings.POWERNODE_HEARTBEAT_INTERVAL_S = 60
    agent = pending_host["agent"]
    agent.ok("wants_config")
    now = timezone.now()
    DockerHost.objects.filter(pk=pending_host["host_id"]).update(
        cert_signed_at=now - dt.timedelta(minutes=31), config_sent_at=now - dt.timedelta(minutes=30)
    )
    html = root_client.get(host_url(pending_host["host_id"])).content.decode()
    assert "Stuck for 30" in html
    assert "Waiting for the daemon to report ready" in html
    assert "[fd00:abcd:1::" in html and "never 0.0.0.0:2376" in html


def test_a_failed_host_shows_its_last_error(root_client, pending_host):
    pending_host["agent"].ok("failed", error="cannot write /etc/docker/daemon.json: permission denied")
    response = root_client.get(host_url(pending_host["host_id"]))
    html = response.content.decode()
    assert 'id="pn-last-error"' in html and "permission denied" in html
    assert "The agent failed after getting its certificate" in html and "/etc/docker" in html
    assert {p.key: p.state for p in response.context["pn_timeline"]}["failed"] == "failed"


def test_host_list_shows_badges_endpoint_instance_network(root_client, pending_host):
    html = root_client.get("/admin/docker_hosts/dockerhost/").content.decode()
    assert 'class="pn-badge pn-pending"' in html
    assert "tcp://[fd00:abcd:1::" in html
    assert "node-1" in html and "net-a" in html


def test_unknown_host_pages_are_404(root_client, db):
    assert root_client.get(host_url("host-nope", "state.json")).status_code == 404
    assert root_client.get(host_url("host-nope", "decommission/")).status_code == 404
