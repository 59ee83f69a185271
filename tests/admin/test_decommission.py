"""Decommission from the host page and as an admin action, each through the confirmation page."""

from __future__ import annotations

from apps.docker_hosts.models import DockerHost
from apps.events.models import Event
from tests.admin.conftest import messages_of


def test_button_shows_the_confirmation_then_decommissions(root_client, pending_host):
    host_id = pending_host["host_id"]
    url = f"/admin/docker_hosts/dockerhost/{host_id}/decommission/"
    page = root_client.get(url)
    html = page.content.decode()
    assert page.status_code == 200
    for consequence in (
        "stop dockerd",
        "every certificate ever issued for the host is revoked",
        "decommissioning",
    ):
        assert consequence in html
    assert "2 certificates not revoked yet" in html  # the server cert and the platform client cert
    assert DockerHost.objects.get(pk=host_id).status == DockerHost.Status.PENDING  # a GET changes nothing

    response = root_client.post(url, {"post": "yes"}, follow=True)
    assert any("Decommission requested for node-1" in m for m in messages_of(response))
    assert DockerHost.objects.get(pk=host_id).status == DockerHost.Status.DECOMMISSIONING
    assert Event.objects.filter(kind="system.docker.decommission.requested", actor="root-op").count() == 1
    assert "data-pn-poll=" in response.content.decode()  # still waiting: the page keeps watching


def test_admin_action_asks_first_then_runs(root_client, pending_host):
    host_id = pending_host["host_id"]
    form = {"action": "decommission", "_selected_action": host_id}
    confirm = root_client.post("/admin/docker_hosts/dockerhost/", form)
    assert confirm.status_code == 200
    assert 'id="pn-confirm-decommission"' in confirm.content.decode()
    assert DockerHost.objects.get(pk=host_id).status == DockerHost.Status.PENDING

    done = root_client.post("/admin/docker_hosts/dockerhost/", {**form, "post": "yes"}, follow=True)
    assert any("Decommission requested" in m for m in messages_of(done))
    assert DockerHost.objects.get(pk=host_id).status == DockerHost.Status.DECOMMISSIONING


def test_a_decommissioned_host_is_reported_not_raised(root_client, pending_host):
    host_id = pending_host["host_id"]
    agent = pending_host["agent"]
    agent.ok("decommissioned", host_id=host_id)
    response = root_client.post(
        f"/admin/docker_hosts/dockerhost/{host_id}/decommission/", {"post": "yes"}, follow=True
    )
    assert response.status_code == 200
    assert any(m.startswith(f"{host_id}: HostDecommissionedError") for m in messages_of(response))
    html = response.content.decode()
    assert 'id="pn-decommission"' not in html and "data-pn-poll" not in html
