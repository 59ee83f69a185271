"""The admin for day 2 (issue 14): certificate expiry dates (flagged within 7 days), the unreachable status
with its hint and list filter, and the hint of a ready the platform's probe did not accept."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from apps.docker_hosts.models import DockerHost
from apps.docker_hosts.services.probe import docker_probe_round
from powernode.errors import DockerDaemonError


def host_url(host_id: str, suffix: str = "change/") -> str:
    return f"/admin/docker_hosts/dockerhost/{host_id}/{suffix}"


def _down(host: DockerHost) -> str:
    raise DockerDaemonError("cannot reach the Docker daemon: connection refused")


def test_host_page_and_list_show_certificate_expiry_flagged_within_7_days(root_client, pending_host):
    host_id = pending_host["host_id"]
    html = root_client.get(host_url(host_id)).content.decode()
    assert 'id="pn-server-expiry"' in html and 'id="pn-client-expiry"' in html
    assert "pn-expiring" not in html
    soon = timezone.now() + dt.timedelta(days=3)
    DockerHost.objects.filter(pk=host_id).update(server_cert_not_after=soon)
    html = root_client.get(host_url(host_id)).content.decode()
    assert 'class="pn-expiring"' in html and soon.strftime("%Y-%m-%d %H:%M") in html
    listing = root_client.get("/admin/docker_hosts/dockerhost/").content.decode()
    assert "certificate expires" in listing.lower() and 'class="pn-expiring"' in listing
    DockerHost.objects.filter(pk=host_id).update(server_cert_not_after=timezone.now() - dt.timedelta(hours=1))
    assert "expired " in root_client.get(host_url(host_id)).content.decode()


def test_unreachable_host_has_its_badge_hint_and_filter(root_client, pending_host):
    agent = pending_host["agent"]
    agent.ok("wants_config")
    agent.ok("ready", version="20.10.24")
    docker_probe_round(probe=_down)
    response = root_client.get(host_url(pending_host["host_id"]))
    html = response.content.decode()
    assert ">unreachable<" in html and "pn-unreachable" in html
    assert "The platform&#x27;s probe gets no answer from the daemon" in html or "probe gets no answer" in html
    assert "connection refused" in html
    listing = root_client.get("/admin/docker_hosts/dockerhost/?status__exact=unreachable").content.decode()
    assert pending_host["host_id"][:13] in listing
    assert "?status__exact=unreachable" in root_client.get("/admin/docker_hosts/dockerhost/").content.decode()


def test_pending_after_a_refused_ready_probe_shows_the_probe_hint(root_client, pending_host, settings):
    settings.POWERNODE_DOCKER_READY_PROBE = True
    settings.POWERNODE_DOCKER_PROBE_TIMEOUT_S = 1
    agent = pending_host["agent"]
    agent.ok("wants_config")
    DockerHost.objects.filter(pk=pending_host["host_id"]).update(api_endpoint="tcp://127.0.0.1:9")
    assert agent.ok("ready", version="20.10.24")["status"] == "pending"
    html = root_client.get(host_url(pending_host["host_id"])).content.decode()
    assert "the platform cannot reach the daemon" in html
    assert 'id="pn-last-error"' in html
