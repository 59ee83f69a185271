"""Without system.docker_provision: no assign/decommission controls, and crafted POSTs are refused."""

from __future__ import annotations

from apps.docker_hosts.models import DockerHost
from apps.events.models import Event
from apps.modules.models import ModuleAssignment


def changes() -> tuple:
    return (
        list(ModuleAssignment.objects.values_list("node_template_id", "module_id")),
        list(DockerHost.objects.values_list("id", "status")),
        Event.objects.count(),
    )


def test_template_page_has_no_assign_controls(viewer_client, pending_host):
    html = viewer_client.get(
        f"/admin/nodes/nodetemplate/{pending_host['template']['id']}/change/"
    ).content.decode()
    assert 'id="pn-modules"' in html and "docker-engine" in html
    assert 'data-action="assign"' not in html and 'data-action="unassign"' not in html
    assert "needs the permission system.docker_provision" in html


def test_crafted_assign_and_unassign_posts_are_refused(viewer_client, pending_host, catalog):
    template_id = pending_host["template"]["id"]
    before = changes()
    for what, module in (("assign", catalog["k3s-agent"]), ("unassign", catalog["docker-engine"])):
        response = viewer_client.post(
            f"/admin/nodes/nodetemplate/{template_id}/modules/{what}/", {"module_id": str(module.id)}
        )
        assert response.status_code == 403, what
    assert changes() == before


def test_host_page_has_no_decommission_button_and_crafted_posts_are_refused(viewer_client, pending_host):
    host_id = pending_host["host_id"]
    html = viewer_client.get(f"/admin/docker_hosts/dockerhost/{host_id}/change/").content.decode()
    assert 'id="pn-status"' in html and 'id="pn-decommission"' not in html
    listing = viewer_client.get("/admin/docker_hosts/dockerhost/").content.decode()
    assert 'value="decommission"' not in listing

    before = changes()
    decommission = f"/admin/docker_hosts/dockerhost/{host_id}/decommission/"
    assert viewer_client.get(decommission).status_code == 403
    assert viewer_client.post(decommission, {"post": "yes"}).status_code == 403
    response = viewer_client.post(
        "/admin/docker_hosts/dockerhost/",
        {"action": "decommission", "_selected_action": host_id, "post": "yes"},
    )
    assert response.status_code in (200, 302)
    assert changes() == before


def test_a_user_without_any_system_permission_sees_no_fleet(db, django_user_model, client):
    user = django_user_model.objects.create_user("plain-staff", password="pw", is_staff=True)
    client.force_login(user)
    html = client.get("/admin/").content.decode()
    assert 'class="pn-cards"' not in html
