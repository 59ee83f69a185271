"""Assigning modules: lifecycle gate, SDWAN precondition for docker-engine, nothing written on refusal."""

from __future__ import annotations

import json

import pytest

from apps.events.models import Event
from apps.modules.models import Module, ModuleAssignment
from apps.modules.serializers import ModuleSerializer


def _state() -> tuple[int, int]:
    return ModuleAssignment.objects.count(), Event.objects.count()


def test_tutorial_assign_flow(api, fleet):
    instance = api.ok("system_get_instance", {"id": fleet["instance"]["id"]})["instance"]
    template_id = instance["node_template_id"]
    modules = api.ok("system_list_modules")["modules"]
    docker = next(m for m in modules if m["name"] == "docker-engine")
    assert set(docker) == {"id", "name", "version", "runtime", "lifecycle_state", "blessed", "description"}
    assert (docker["runtime"], docker["lifecycle_state"]) == ("docker", "live")

    assignment = api.ok("system_assign_module_to_template", {"template_id": template_id, "module_id": docker["id"]})
    assert assignment["assignment"]["template_id"] == template_id
    assert assignment["assignment"]["module_id"] == docker["id"]
    events = api.ok("recent_events", {"kind_prefix": "system.docker", "limit": 20})["events"]
    assert [e["kind"] for e in events] == ["system.docker.module.assigned"]
    assert events[0]["actor"] == "ops-admin"
    assert events[0]["data"]["template_id"] == template_id


@pytest.mark.contract
def test_the_catalog_listing_is_what_the_module_serializer_writes(api, catalog):
    # the listing reads its rows with SQL of its own: the same keys in the same order, values and types
    Module.objects.create(name="aaa-tool", version="10.0", runtime="k3s", blessed=True, description="ünï — 'q' \"x\"")
    Module.objects.create(name="aaa-tool", version="2.0", lifecycle_state="retired")
    listed = api.ok("system_list_modules")["modules"]
    expected = ModuleSerializer(Module.objects.order_by("name", "version"), many=True).data
    assert json.dumps(listed) == json.dumps(expected)
    assert [m["version"] for m in listed[:2]] == ["10.0", "2.0"]  # ordered as text, like the ORM
    assert listed[0]["blessed"] is True and listed[1]["blessed"] is False


def test_assign_twice_is_409(api, fleet):
    payload = {"template_id": fleet["template"]["id"], "module_id": str(fleet["docker_module"].id)}
    api.ok("system_assign_module_to_template", payload)
    before = _state()
    status, body = api.call("system_assign_module_to_template", payload)
    assert status == 409 and body["error"]["type"] == "ConflictError"
    assert _state() == before


def test_missing_sdwan_peer_names_the_instances_and_writes_nothing(api, catalog):
    template = api.ok("system_create_node_template", {"name": "bare"})["template"]
    ids = {}
    for name in ("bare-1", "bare-2"):
        ids[name] = api.ok("system_provision_instance", {"template_id": template["id"], "name": name})["instance"]["id"]
    network = api.ok("system_sdwan_create_network", {"name": "n1"})["network"]
    api.ok("system_sdwan_attach_peer", {"network_id": network["id"], "node_instance_id": ids["bare-1"]})
    before = _state()
    status, body = api.call(
        "system_assign_module_to_template",
        {"template_id": template["id"], "module_id": str(catalog["docker-engine"].id)},
    )
    assert status == 409
    assert body["error"]["type"] == "MissingSdwanPeerError"
    assert body["error"]["details"]["instances"] == [{"id": ids["bare-2"], "name": "bare-2"}]
    assert "bare-2" in body["error"]["message"] and "bare-1" not in body["error"]["message"]
    assert _state() == before


def test_template_without_instances_can_take_docker_engine(api, catalog):
    template = api.ok("system_create_node_template", {"name": "empty"})["template"]
    api.ok(
        "system_assign_module_to_template",
        {"template_id": template["id"], "module_id": str(catalog["docker-engine"].id)},
    )


@pytest.mark.parametrize("override", [False, True])
def test_published_module_not_blessed_is_refused(api, fleet, catalog, override):
    before = _state()
    status, body = api.call(
        "system_assign_module_to_template",
        {"template_id": fleet["template"]["id"], "module_id": str(catalog["k3s-server"].id), "override": override},
    )
    assert status == 409
    assert body["error"]["type"] == "ModuleNotLiveError"
    assert body["error"]["details"] == {
        "module_id": str(catalog["k3s-server"].id),
        "lifecycle_state": "published",
        "blessed": False,
    }
    assert _state() == before


def test_blessed_module_needs_override(api, fleet, catalog):
    module = catalog["k3s-agent"]
    Module.objects.filter(pk=module.pk).update(blessed=True)
    payload = {"template_id": fleet["template"]["id"], "module_id": str(module.id)}
    status, body = api.call("system_assign_module_to_template", payload)
    assert status == 409 and "override" in body["error"]["message"]
    assigned = api.ok("system_assign_module_to_template", {**payload, "override": True})["assignment"]
    assert assigned["override"] is True
    kinds = [e["kind"] for e in api.ok("recent_events", {"kind_prefix": "system.k3s"})["events"]]
    assert kinds == ["system.k3s.module.assigned"]


def test_retired_module_is_refused_even_blessed(api, fleet, catalog):
    module = catalog["k3s-agent"]
    Module.objects.filter(pk=module.pk).update(blessed=True, lifecycle_state="retired")
    status, body = api.call(
        "system_assign_module_to_template",
        {"template_id": fleet["template"]["id"], "module_id": str(module.id), "override": True},
    )
    assert status == 409 and body["error"]["type"] == "ModuleNotLiveError"


def test_unassign(api, fleet):
    payload = {"template_id": fleet["template"]["id"], "module_id": str(fleet["docker_module"].id)}
    api.ok("system_assign_module_to_template", payload)
    body = api.ok("system_unassign_module_from_template", payload)
    assert body["unassigned"]["module_id"] == payload["module_id"]
    assert not ModuleAssignment.objects.exists()
    kinds = [e["kind"] for e in api.ok("recent_events", {"kind_prefix": "system.docker"})["events"]]
    assert kinds == ["system.docker.module.unassigned", "system.docker.module.assigned"]
    status, body = api.call("system_unassign_module_from_template", payload)
    assert status == 404 and body["error"]["type"] == "NotFound"
