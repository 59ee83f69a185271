"""Assigning modules from the template page: the action's refusals as messages, nothing written on refusal."""

from __future__ import annotations

from apps.events.models import Event
from apps.modules.models import Module, ModuleAssignment
from tests.admin.conftest import messages_of


def template_url(template_id: str, suffix: str = "change/") -> str:
    return f"/admin/nodes/nodetemplate/{template_id}/{suffix}"


def post(client, template_id: str, what: str, **form):  # noqa: ANN001, ANN201
    return client.post(template_url(template_id, f"modules/{what}/"), form, follow=True)


def test_assign_and_unassign_docker_engine(root_client, fleet):
    template_id, module = fleet["template"]["id"], fleet["docker_module"]
    response = post(root_client, template_id, "assign", module_id=str(module.id))
    assert response.redirect_chain[-1][0].endswith(template_url(template_id) + "#pn-modules")
    assert any("Assigned docker-engine 1.0.0 to docker-nodes" in m for m in messages_of(response))
    assignment = ModuleAssignment.objects.get(node_template_id=template_id, module=module)
    assert assignment.assigned_by.username == "root-op"
    assert Event.objects.filter(kind="system.docker.module.assigned", actor="root-op").count() == 1

    response = post(root_client, template_id, "unassign", module_id=str(module.id))
    assert any("Unassigned docker-engine" in m for m in messages_of(response))
    assert not ModuleAssignment.objects.filter(node_template_id=template_id).exists()
    assert Event.objects.filter(kind="system.docker.module.unassigned").count() == 1


def test_missing_sdwan_peer_is_a_message_naming_the_instance_and_writes_nothing(root_client, api, catalog):
    template = api.ok("system_create_node_template", {"name": "edge-nodes"})["template"]
    api.ok("system_provision_instance", {"template_id": template["id"], "name": "edge-7"})
    before = (ModuleAssignment.objects.count(), Event.objects.count())
    response = post(root_client, template["id"], "assign", module_id=str(catalog["docker-engine"].id))
    errors = [m for m in messages_of(response) if m.startswith("MissingSdwanPeerError")]
    assert errors and "edge-7" in errors[0], messages_of(response)
    assert (ModuleAssignment.objects.count(), Event.objects.count()) == before


def test_module_not_live_is_a_message_naming_the_module(root_client, fleet, catalog):
    before = Event.objects.count()
    response = post(root_client, fleet["template"]["id"], "assign", module_id=str(catalog["k3s-server"].id))
    errors = [m for m in messages_of(response) if m.startswith("ModuleNotLiveError")]
    assert errors and "k3s-server" in errors[0] and "published" in errors[0]
    assert not ModuleAssignment.objects.filter(module=catalog["k3s-server"]).exists()
    assert Event.objects.count() == before


def test_override_is_offered_and_works_only_for_blessed_modules(root_client, fleet, catalog):
    Module.objects.filter(pk=catalog["k3s-agent"].pk).update(blessed=True)
    page = root_client.get(template_url(fleet["template"]["id"])).content.decode()
    rows = {
        name: page.split(f'data-module="{name}"', 1)[1].split("</tr>", 1)[0]
        for name in ("k3s-agent", "k3s-server")
    }
    assert 'name="override"' in rows["k3s-agent"]
    assert 'name="override"' not in rows["k3s-server"]

    without = post(root_client, fleet["template"]["id"], "assign", module_id=str(catalog["k3s-agent"].id))
    assert any("pass override: true" in m for m in messages_of(without))
    with_override = post(
        root_client, fleet["template"]["id"], "assign", module_id=str(catalog["k3s-agent"].id), override="1"
    )
    assert any(m.startswith("Assigned k3s-agent") for m in messages_of(with_override))
    assert ModuleAssignment.objects.get(module=catalog["k3s-agent"]).override is True


def test_bad_input_is_a_message_not_a_500(root_client, fleet):
    response = post(root_client, fleet["template"]["id"], "assign", module_id="not-a-uuid")
    assert response.status_code == 200
    assert any(m.startswith("ValidationError") for m in messages_of(response))


def test_assign_needs_post(root_client, fleet):
    assert root_client.get(template_url(fleet["template"]["id"], "modules/assign/")).status_code == 405


def test_template_page_lists_instances_with_their_peers(root_client, fleet):
    html = root_client.get(template_url(fleet["template"]["id"])).content.decode()
    assert 'id="pn-template-instances"' in html and "node-1" in html and "fd00:abcd:1::" in html
