"""Every action over HTTP: happy path, permission refusal (403), bad input (400), unknown object (404)."""

from __future__ import annotations

import uuid

import pytest

from apps.events.models import Event
from powernode.registry import all_actions

pytestmark = pytest.mark.contract

MISSING = str(uuid.uuid4())


def _rows() -> int:
    from apps.modules.models import ModuleAssignment
    from apps.nodes.models import NodeInstance, NodeTemplate
    from apps.sdwan.models import AccessGrant, SdwanNetwork, SdwanPeer

    models = [Event, NodeTemplate, NodeInstance, SdwanNetwork, SdwanPeer, AccessGrant, ModuleAssignment]
    return sum(m.objects.count() for m in models)


def _cases(fleet) -> dict[str, dict]:
    """name → {ok: input, perm: permission codename, bad: input, missing: input or None}."""
    t, i, n, m = fleet["template"]["id"], fleet["instance"]["id"], fleet["network"]["id"], fleet["docker_module"]
    return {
        "system_create_node_template": dict(ok={"name": "t2"}, bad={"name": ""}, missing=None),
        "system_sdwan_create_network": dict(
            ok={"name": "net-b"}, bad={"name": "net-c", "prefix": "10.0.0.0/8"}, missing=None
        ),
        "system_provision_instance": dict(
            ok={"template_id": t, "name": "node-2"},
            bad={"template_id": t, "name": 7},
            missing={"template_id": MISSING, "name": "node-3"},
        ),
        "system_get_instance": dict(ok={"id": i}, bad={"id": "not-a-uuid"}, missing={"id": MISSING}),
        "system_list_modules": dict(ok={}, bad={"unexpected": 1}, missing=None),
        "system_assign_module_to_template": dict(
            ok={"template_id": t, "module_id": str(m.id)},
            bad={"template_id": t, "module_id": str(m.id), "override": "yes"},
            missing={"template_id": t, "module_id": MISSING},
        ),
        "system_unassign_module_from_template": dict(
            ok=None,  # needs an assignment first: covered in test_assignment.py
            bad={"template_id": t},
            missing={"template_id": MISSING, "module_id": str(m.id)},
        ),
        "system_sdwan_list_peers": dict(ok={"network_id": n}, bad={"network_id": 12}, missing={"network_id": MISSING}),
        "system_sdwan_attach_peer": dict(
            ok=None,  # fleet already attached node-1; a fresh attach is in test_sdwan.py
            bad={"network_id": n, "node_instance_id": "x"},
            missing={"network_id": n, "node_instance_id": MISSING},
        ),
        "system_sdwan_create_access_grant": dict(
            ok={"network_id": n, "device_name_hint": "ops-laptop"},
            bad={"network_id": n, "device_name_hint": "has spaces and / slashes"},
            missing={"network_id": MISSING, "device_name_hint": "ops-laptop"},
        ),
        "recent_events": dict(ok={"kind_prefix": "system.sdwan", "limit": 5}, bad={"limit": 501}, missing=None),
        "platform_provisioning_status": dict(ok={}, bad={"x": 1}, missing=None),
    }


CORE_ACTIONS = [
    "system_create_node_template",
    "system_sdwan_create_network",
    "system_provision_instance",
    "system_get_instance",
    "system_list_modules",
    "system_assign_module_to_template",
    "system_unassign_module_from_template",
    "system_sdwan_list_peers",
    "system_sdwan_attach_peer",
    "system_sdwan_create_access_grant",
    "recent_events",
    "platform_provisioning_status",
]


NO_OBJECT_ID = {
    "system_create_node_template",
    "system_sdwan_create_network",
    "system_list_modules",
    "recent_events",
    "platform_provisioning_status",
}


def test_core_actions_are_registered():
    names = {a.name for a in all_actions()}
    assert set(CORE_ACTIONS) <= names


# unassign and attach need extra state for their happy path: test_assignment.py and test_sdwan.py
@pytest.mark.parametrize(
    "name, key",
    [
        ("system_create_node_template", "template"),
        ("system_sdwan_create_network", "network"),
        ("system_provision_instance", "instance"),
        ("system_get_instance", "instance"),
        ("system_list_modules", "modules"),
        ("system_assign_module_to_template", "assignment"),
        ("system_sdwan_list_peers", "peers"),
        ("system_sdwan_create_access_grant", "grant"),
        ("recent_events", "events"),
        ("platform_provisioning_status", "ca_adapter"),
    ],
)
def test_happy_path(name, key, api, fleet):
    body = api.ok(name, _cases(fleet)[name]["ok"])
    assert key in body, body


@pytest.mark.parametrize("name", CORE_ACTIONS)
def test_permission_refused_and_nothing_written(name, api_as, fleet):
    case = _cases(fleet)[name]
    payload = case["ok"] or case["missing"] or {}
    outsider = api_as("outsider", perms=[])
    before = _rows()
    status, body = outsider.call(name, payload)
    assert status == 403, body
    assert body["error"]["type"] == "PermissionDenied"
    assert body["error"]["details"]["permission"].startswith("system.")
    assert _rows() == before


@pytest.mark.parametrize("name", CORE_ACTIONS)
def test_bad_input_is_400_and_nothing_written(name, api, fleet):
    case = _cases(fleet)[name]
    before = _rows()
    status, body = api.call(name, case["bad"])
    assert status == 400, body
    assert body["error"]["type"] == "ValidationError"
    assert body["error"]["message"]
    assert _rows() == before


@pytest.mark.parametrize("name", [n for n in CORE_ACTIONS if n not in NO_OBJECT_ID])
def test_unknown_object_is_404(name, api, fleet):
    case = _cases(fleet)[name]
    before = _rows()
    status, body = api.call(name, case["missing"])
    assert status == 404, body
    assert body["error"]["type"] == "NotFound"
    assert MISSING in body["error"]["message"]
    assert _rows() == before


@pytest.mark.parametrize("name", CORE_ACTIONS)
def test_body_that_is_not_json_is_400(name, api, fleet):
    status, body = api.call(name, raw="{not json")
    assert status == 400
    assert body["error"]["type"] == "ValidationError"


@pytest.mark.parametrize("raw", ["[]", "42", '"text"', "null"])
def test_body_must_be_an_object(api, raw):
    status, body = api.call("system_list_modules", raw=raw)
    assert status == 400, body
    assert "JSON object" in body["error"]["message"]
