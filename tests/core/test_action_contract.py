"""Every registered action over HTTP: happy path, permission refusal (403), bad input (400), unknown object (404).

The cases are generated from the registry (``powernode.registry.all_actions()``): an action registered
without an entry in ``_cases`` fails ``test_every_registered_action_has_contract_cases``, and the
permission and bad-input cases of every action are derived from its permission and its input schema.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from apps.events.models import Event
from powernode.permissions import CODENAMES
from powernode.registry import Action, all_actions, get_action

pytestmark = pytest.mark.contract

ROOT = Path(__file__).resolve().parents[2]
MISSING = str(uuid.uuid4())
MISSING_HOST = f"host-{MISSING}"
ACTIONS = [a.name for a in all_actions()]


@dataclass(frozen=True)
class Case:
    """ok: an input that succeeds on the fleet, answered with ``key`` (None when the happy path needs more
    state: ``elsewhere`` names the file that drives it); bad: an input the schema refuses; missing: an
    input naming an object that does not exist (None when the action names no object)."""

    bad: dict[str, Any]
    missing: dict[str, Any] | None
    ok: dict[str, Any] | None = None
    key: str = ""
    elsewhere: str = ""


def _cases(fleet: dict[str, Any]) -> dict[str, Case]:
    t, i, n, m = fleet["template"]["id"], fleet["instance"]["id"], fleet["network"]["id"], fleet["docker_module"]
    on_real_dockerd = "lab/tutorial.py"  # tests/lab/test_tutorial_lab.py walks it against a real dockerd
    day2_on_real_dockerd = "tests/lab/test_tutorial_lab.py"  # its day-2 test calls these actions
    image = "registry.lab:5000/hello:1"
    return {
        "system_create_node_template": Case(ok={"name": "t2"}, key="template", bad={"name": ""}, missing=None),
        "system_sdwan_create_network": Case(
            ok={"name": "net-b"}, key="network", bad={"name": "net-c", "prefix": "10.0.0.0/8"}, missing=None
        ),
        "system_provision_instance": Case(
            ok={"template_id": t, "name": "node-2"},
            key="instance",
            bad={"template_id": t, "name": 7},
            missing={"template_id": MISSING, "name": "node-3"},
        ),
        "system_agent_install_command": Case(
            ok={"id": i, "platform_url": "https://platform.example.net"},
            key="command",
            bad={"id": i, "platform_url": 7},
            missing={"id": MISSING, "platform_url": "https://platform.example.net"},
        ),
        "system_get_instance": Case(
            ok={"id": i}, key="instance", bad={"id": "not-a-uuid"}, missing={"id": MISSING}
        ),
        "system_list_modules": Case(ok={}, key="modules", bad={"unexpected": 1}, missing=None),
        "system_assign_module_to_template": Case(
            ok={"template_id": t, "module_id": str(m.id)},
            key="assignment",
            bad={"template_id": t, "module_id": str(m.id), "override": "yes"},
            missing={"template_id": t, "module_id": MISSING},
        ),
        "system_unassign_module_from_template": Case(
            elsewhere="tests/core/test_assignment.py",  # needs an assignment first
            bad={"template_id": t},
            missing={"template_id": MISSING, "module_id": str(m.id)},
        ),
        "system_sdwan_list_peers": Case(
            ok={"network_id": n}, key="peers", bad={"network_id": 12}, missing={"network_id": MISSING}
        ),
        "system_sdwan_attach_peer": Case(
            elsewhere="tests/core/test_sdwan.py",  # the fleet already attached node-1
            bad={"network_id": n, "node_instance_id": "x"},
            missing={"network_id": n, "node_instance_id": MISSING},
        ),
        "system_sdwan_reset_peer_key": Case(
            ok={"peer_id": fleet["peer"]["id"]}, key="peer", bad={"peer_id": "x"}, missing={"peer_id": MISSING}
        ),
        "system_sdwan_create_access_grant": Case(
            ok={"network_id": n, "device_name_hint": "ops-laptop"},
            key="grant",
            bad={"network_id": n, "device_name_hint": "has spaces and / slashes"},
            missing={"network_id": MISSING, "device_name_hint": "ops-laptop"},
        ),
        "system_sdwan_list_access_grants": Case(
            ok={"network_id": n}, key="grants", bad={"network_id": 12}, missing={"network_id": MISSING}
        ),
        "system_sdwan_revoke_access_grant": Case(
            elsewhere="tests/core/test_access_grants.py",  # needs a grant first
            bad={"grant_id": "not-a-uuid"},
            missing={"grant_id": MISSING},
        ),
        "system_sdwan_detach_peer": Case(
            ok={"network_id": n, "node_instance_id": i},
            key="detached",
            bad={"network_id": n, "node_instance_id": "x"},
            missing={"network_id": n, "node_instance_id": MISSING},
        ),
        "system_sdwan_create_hub_token": Case(
            ok={"name": "hub-1"}, key="hub_token", bad={"name": "has space"}, missing=None
        ),
        "system_sdwan_list_hub_tokens": Case(ok={}, key="tokens", bad={"x": 1}, missing=None),
        "system_sdwan_revoke_hub_token": Case(
            elsewhere="tests/core/test_hub.py",  # needs a token first
            bad={"token_id": "not-a-uuid"},
            missing={"token_id": MISSING},
        ),
        "system_decommission_docker_runtime": Case(
            elsewhere="tests/handshake/test_decommission.py",  # needs a host from the handshake
            bad={"host_id": "node-1"},
            missing={"host_id": MISSING_HOST},
        ),
        "system_export_operator_cert": Case(
            ok={"network_id": n},
            key="cert_pem",
            bad={"network_id": n, "ttl_minutes": 481},
            missing={"network_id": MISSING},
        ),
        "recent_events": Case(
            ok={"kind_prefix": "system.sdwan", "limit": 5}, key="events", bad={"limit": 501}, missing=None
        ),
        "platform_provisioning_status": Case(ok={}, key="ca_adapter", bad={"x": 1}, missing=None),
        "docker_list_hosts": Case(ok={}, key="hosts", bad={"status": 7}, missing=None),
        "docker_list_containers": Case(
            elsewhere=on_real_dockerd,
            bad={"host_id": MISSING_HOST, "all": "yes"},
            missing={"host_id": MISSING_HOST},
        ),
        "docker_pull_image": Case(
            elsewhere=on_real_dockerd,
            bad={"host_id": MISSING_HOST, "image": "has space"},
            missing={"host_id": MISSING_HOST, "image": image},
        ),
        "docker_create_container": Case(
            elsewhere=on_real_dockerd,
            bad={"host_id": MISSING_HOST, "image": image, "name": "bad/name"},
            missing={"host_id": MISSING_HOST, "image": image, "name": "hello"},
        ),
        "docker_delete_container": Case(
            elsewhere=on_real_dockerd,
            bad={"host_id": MISSING_HOST},
            missing={"host_id": MISSING_HOST, "container_id": "hello", "force": True},
        ),
        "docker_delete_image": Case(
            elsewhere=on_real_dockerd,
            bad={"host_id": MISSING_HOST, "image_id": image, "extra": 1},
            missing={"host_id": MISSING_HOST, "image_id": image},
        ),
        "docker_list_images": Case(
            elsewhere=day2_on_real_dockerd, bad={"host_id": "nope"}, missing={"host_id": MISSING_HOST}
        ),
        "docker_inspect_container": Case(
            elsewhere=day2_on_real_dockerd,
            bad={"host_id": MISSING_HOST, "container_id": "../x"},
            missing={"host_id": MISSING_HOST, "container_id": "hello"},
        ),
        "docker_container_logs": Case(
            elsewhere=day2_on_real_dockerd,
            bad={"host_id": MISSING_HOST, "container_id": "hello", "tail": 5001},
            missing={"host_id": MISSING_HOST, "container_id": "hello"},
        ),
        **{
            f"docker_{op}_container": Case(
                elsewhere=day2_on_real_dockerd,
                bad={"host_id": MISSING_HOST, "container_id": "a/b"},
                missing={"host_id": MISSING_HOST, "container_id": "hello"},
            )
            for op in ("start", "stop", "restart")
        },
        "docker_set_registry_credentials": Case(
            ok={"registry": "registry.lab:5000", "username": "puller", "password": "s3cret"},
            key="registry",
            bad={"registry": "registry.lab:5000", "username": "puller"},
            missing=None,
        ),
        "system_delete_instance": Case(ok={"id": i}, key="deleted", bad={"id": "x"}, missing={"id": MISSING}),
    }


# ids only, for what is decided at collection time (which actions have which kind of case)
_SHAPE = _cases(
    {
        "template": {"id": MISSING},
        "instance": {"id": MISSING},
        "network": {"id": MISSING},
        "peer": {"id": MISSING},
        "docker_module": SimpleNamespace(id=MISSING),
    }
)
HAPPY = [name for name in ACTIONS if _SHAPE.get(name) and _SHAPE[name].ok is not None]
NAMES_AN_OBJECT = [name for name in ACTIONS if _SHAPE.get(name) and _SHAPE[name].missing is not None]
WRONG_TYPE = {"string": 12345, "integer": "12", "boolean": "yes", "array": "x", "object": "x", "number": "x"}


def _rows() -> int:
    from apps.docker_hosts.models import DockerHost
    from apps.modules.models import ModuleAssignment
    from apps.nodes.models import NodeInstance, NodeTemplate
    from apps.pki.models import IssuedCertificate
    from apps.sdwan.models import AccessGrant, HubToken, SdwanNetwork, SdwanPeer

    models = [
        HubToken,
        Event,
        NodeTemplate,
        NodeInstance,
        SdwanNetwork,
        SdwanPeer,
        AccessGrant,
        ModuleAssignment,
        DockerHost,
        IssuedCertificate,
    ]
    return sum(m.objects.count() for m in models)


def _valid_shape(case: Case) -> dict[str, Any]:
    """An input of the right shape for mutating into bad ones."""
    return dict(case.ok if case.ok is not None else case.missing or {})


def _schema_bad_inputs(action: Action, case: Case) -> list[tuple[str, dict[str, Any]]]:
    """Inputs the schema must refuse, derived from it: each required field left out, each typed field of the
    wrong type, an unknown field (where the schema is closed), plus the table's own bad input."""
    schema, shape = action.input_schema, _valid_shape(case)
    bad: list[tuple[str, dict[str, Any]]] = [("table", case.bad)]
    for field in schema.get("required", []):
        bad.append((f"without {field}", {k: v for k, v in shape.items() if k != field}))
    for field, spec in schema.get("properties", {}).items():
        if isinstance(spec.get("type"), str):
            bad.append((f"{field} of the wrong type", {**shape, field: WRONG_TYPE[spec["type"]]}))
    if schema.get("additionalProperties") is False:
        bad.append(("an unknown field", {**shape, "not_in_the_schema": 1}))
    return bad


def test_every_registered_action_has_contract_cases():
    assert ACTIONS, "the registry is empty"
    without = sorted(set(ACTIONS) - set(_SHAPE))
    assert not without, f"actions without contract cases in {__file__}: {without}"
    assert not set(_SHAPE) - set(ACTIONS), "cases for actions that are not registered"


@pytest.mark.parametrize("name", ACTIONS)
def test_every_happy_path_is_driven_somewhere(name):
    case = _SHAPE.get(name)
    assert case is not None, name
    if case.ok is not None:
        assert case.key, name
        return
    assert case.elsewhere, f"{name}: no happy path here and none named elsewhere"
    assert name in (ROOT / case.elsewhere).read_text(), f"{case.elsewhere} does not drive {name}"


@pytest.mark.parametrize("name", HAPPY)
def test_happy_path(name, api, fleet):
    case = _cases(fleet)[name]
    body = api.ok(name, case.ok)
    assert case.key in body, body


@pytest.mark.parametrize("name", ACTIONS)
def test_permission_refused_and_nothing_written(name, api_as, fleet):
    action = get_action(name)
    case = _cases(fleet)[name]
    payload = _valid_shape(case)
    outsider = api_as("outsider", perms=[])
    # every other system permission, but not this action's
    almost = api_as("almost", perms=sorted(CODENAMES - {action.permission_codename}))
    before = _rows()
    for operator in (outsider, almost):
        status, body = operator.call(name, payload)
        assert status == 403, body
        assert body["error"]["type"] == "PermissionDenied"
        assert body["error"]["details"]["permission"] == action.permission
    assert _rows() == before


@pytest.mark.parametrize("name", ACTIONS)
def test_bad_input_is_400_and_nothing_written(name, api, fleet):
    action = get_action(name)
    before = _rows()
    for label, payload in _schema_bad_inputs(action, _cases(fleet)[name]):
        status, body = api.call(name, payload)
        assert status == 400, (label, payload, body)
        assert body["error"]["type"] == "ValidationError", (label, body)
        assert body["error"]["message"], label
    assert _rows() == before


@pytest.mark.parametrize("name", NAMES_AN_OBJECT)
def test_unknown_object_is_404(name, api, fleet):
    case = _cases(fleet)[name]
    before = _rows()
    status, body = api.call(name, case.missing)
    assert status == 404, body
    assert body["error"]["type"] == "NotFound"
    assert MISSING in body["error"]["message"]
    assert _rows() == before


@pytest.mark.parametrize("name", ACTIONS)
def test_body_that_is_not_json_is_400(name, api, fleet):
    status, body = api.call(name, raw="{not json")
    assert status == 400
    assert body["error"]["type"] == "ValidationError"


@pytest.mark.parametrize("raw", ["[]", "42", '"text"', "null"])
def test_body_must_be_an_object(api, raw):
    status, body = api.call("system_list_modules", raw=raw)
    assert status == 400, body
    assert "JSON object" in body["error"]["message"]
