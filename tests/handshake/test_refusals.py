"""Every refusal of the handshake: bad input (400) and state conflicts (409), each changing nothing."""

from __future__ import annotations

import pytest

from apps.docker_hosts.models import DockerHost
from apps.modules.models import Module
from apps.nodes.models import NodeInstance
from tests.agents import HANDSHAKE, AgentClient
from tests.csr import make_bad_signature_csr, make_csr
from tests.factories import ModuleFactory
from tests.handshake.conftest import assert_error, host_snapshot, state_counts


def refused(agent, body=None, *, raw=None, status_code, error_type):  # noqa: ANN001, ANN201
    """Post, check the error shape, and check that no row anywhere changed."""
    before, hosts_before = state_counts(), host_snapshot()
    status, answer = agent.post(HANDSHAKE, body, raw=raw)
    error = assert_error(status, answer, status_code, error_type)
    assert state_counts() == before
    assert host_snapshot() == hosts_before
    return error


# -- 400: bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "runtime"),
        ({"phase": "installing"}, "runtime"),
        ({"runtime": "k3s", "phase": "installing"}, "runtime"),
        ({"runtime": 5, "phase": "installing"}, "runtime"),
        ({"runtime": "docker"}, "phase"),
        ({"runtime": "docker", "phase": "dancing"}, "phase"),
        ({"runtime": "docker", "phase": "none"}, "phase"),
        ({"runtime": "docker", "phase": ["ready"]}, "phase"),
        ({"runtime": "docker", "phase": "ready"}, "version"),
        ({"runtime": "docker", "phase": "ready", "version": ""}, "version"),
        ({"runtime": "docker", "phase": "ready", "version": "v" * 41}, "version"),
        ({"runtime": "docker", "phase": "failed"}, "error"),
        ({"runtime": "docker", "phase": "failed", "error": {"x": 1}}, "error"),
        ({"runtime": "docker", "phase": "decommissioned"}, "host_id"),
        ({"runtime": "docker", "phase": "wants_cert", "csr_pem": 12}, "csr_pem"),
    ],
)
def test_bad_fields_are_400(agent, body, field):
    agent.ok("installing")
    error = refused(agent, body, status_code=400, error_type="ValidationError")
    assert field in error["details"]["fields"]


@pytest.mark.parametrize(
    "csr, check",
    [
        (None, "present"),
        ("", "present"),
        ("garbage", "pem"),
        ("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n", "pem"),
        ("x" * 20000, "size"),
        ("rsa", "key_type"),
        ("bad-signature", "signature"),
    ],
)
def test_bad_csr_is_400_invalid_csr(agent, csr, check):
    agent.ok("installing")
    body = {"runtime": "docker", "phase": "wants_cert"}
    if csr == "rsa":
        csr = make_csr(key_type="rsa")
    elif csr == "bad-signature":
        csr = make_bad_signature_csr()
    if csr is not None:
        body["csr_pem"] = csr
    error = refused(agent, body, status_code=400, error_type="InvalidCsrError")
    assert error["details"]["check"] == check
    assert DockerHost.objects.count() == 0


def test_bad_csr_on_an_existing_host_changes_nothing(agent):
    agent.walk_to_ready()
    refused(
        agent,
        {"runtime": "docker", "phase": "wants_cert", "csr_pem": make_bad_signature_csr()},
        status_code=400,
        error_type="InvalidCsrError",
    )
    assert DockerHost.objects.get().status == DockerHost.Status.CONNECTED


@pytest.mark.parametrize("raw", ["{nope", "[]", "null", '"wants_cert"'])
def test_body_not_a_json_object_is_400(agent, raw):
    refused(agent, raw=raw, status_code=400, error_type="ValidationError")


def test_oversize_body_is_413(agent):
    raw = '{"runtime": "docker", "phase": "failed", "error": "' + "e" * (65 * 1024) + '"}'
    refused(agent, raw=raw, status_code=413, error_type="PayloadTooLarge")


# -- 409: the platform's state refuses -------------------------------------------------------------


@pytest.mark.parametrize("phase", ["installing", "wants_cert", "wants_config", "ready", "failed"])
def test_runtime_not_assigned_is_409(fleet, phase):
    agent = AgentClient(fleet["agent_token"])
    fields = {"csr_pem": make_csr(), "version": "1", "error": "x"}
    error = refused(
        agent,
        {"runtime": "docker", "phase": phase, **fields},
        status_code=409,
        error_type="RuntimeNotAssignedError",
    )
    assert error["details"]["template_id"] == fleet["template"]["id"]


def test_wants_cert_without_a_peer_is_missing_sdwan_peer(api, docker_fleet):
    """An instance provisioned after the assignment has no peer yet: wants_cert refuses, naming it."""
    other = api.ok(
        "system_provision_instance", {"template_id": docker_fleet["template"]["id"], "name": "node-2"}
    )
    agent = AgentClient(other["agent_token"])
    agent.ok("installing")
    error = refused(
        agent,
        {"runtime": "docker", "phase": "wants_cert", "csr_pem": make_csr()},
        status_code=409,
        error_type="MissingSdwanPeerError",
    )
    assert error["details"]["instances"] == [{"id": other["instance"]["id"], "name": "node-2"}]


@pytest.mark.parametrize("phase, fields", [("wants_config", {}), ("ready", {"version": "20.10.24"})])
def test_phases_before_a_certificate_name_the_phase_to_post(agent, phase, fields):
    agent.ok("installing")
    error = refused(
        agent,
        {"runtime": "docker", "phase": phase, **fields},
        status_code=409,
        error_type="HandshakePhaseError",
    )
    assert error["details"]["expected_phase"] == "wants_cert"
    assert "wants_cert" in error["message"]


@pytest.mark.parametrize(
    "phase, fields",
    [
        ("installing", {}),
        ("wants_cert", {"csr_pem": "CSR"}),
        ("wants_config", {}),
        ("ready", {"version": "20.10.24"}),
        ("failed", {"error": "x"}),
    ],
)
def test_decommissioning_host_accepts_only_the_confirmation(api, agent, phase, fields):
    agent.walk_to_ready()
    host_id = DockerHost.objects.get().id
    api.ok("system_decommission_docker_runtime", {"host_id": host_id})
    if fields.get("csr_pem") == "CSR":
        fields = {"csr_pem": make_csr()}
    if phase == "failed":
        # a failure report is still recorded (the agent may fail while stopping dockerd)
        assert agent.ok(phase, **fields)["host_id"] == host_id
        assert DockerHost.objects.get().status == DockerHost.Status.DECOMMISSIONING
        return
    error = refused(
        agent,
        {"runtime": "docker", "phase": phase, **fields},
        status_code=409,
        error_type="HandshakePhaseError",
    )
    assert error["details"]["expected_phase"] == "decommissioned"


@pytest.mark.parametrize(
    "phase, fields",
    [
        ("installing", {}),
        ("wants_cert", {"csr_pem": "CSR"}),
        ("wants_config", {}),
        ("ready", {"version": "20.10.24"}),
        ("decommissioned", {"host_id": "HOST"}),
    ],
)
def test_decommissioned_host_is_409(api, agent, phase, fields):
    agent.walk_to_ready()
    host_id = DockerHost.objects.get().id
    api.ok("system_decommission_docker_runtime", {"host_id": host_id})
    agent.ok("decommissioned", host_id=host_id)
    fields = {k: (make_csr() if v == "CSR" else host_id if v == "HOST" else v) for k, v in fields.items()}
    error = refused(
        agent,
        {"runtime": "docker", "phase": phase, **fields},
        status_code=409,
        error_type="HostDecommissionedError",
    )
    assert error["details"]["host_id"] == host_id


def test_unassigning_stops_new_handshakes_but_leaves_the_running_host(api, docker_fleet, agent):
    agent.walk_to_ready()
    host = DockerHost.objects.get()
    module_id = str(docker_fleet["docker_module"].id)
    api.ok(
        "system_unassign_module_from_template",
        {"template_id": docker_fleet["template"]["id"], "module_id": module_id},
    )
    assert DockerHost.objects.get().status == DockerHost.Status.CONNECTED  # left to an explicit decommission
    assert agent.heartbeat()[1]["runtime_orders"] == []
    refused(
        agent,
        {"runtime": "docker", "phase": "wants_cert", "csr_pem": make_csr()},
        status_code=409,
        error_type="RuntimeNotAssignedError",
    )
    # the operator can still decommission it, and the agent still confirm it
    api.ok("system_decommission_docker_runtime", {"host_id": host.id})
    assert agent.heartbeat()[1]["runtime_orders"] == [
        {"runtime": "docker", "action": "decommission", "host_id": host.id}
    ]
    assert agent.ok("decommissioned", host_id=host.id)["status"] == "decommissioned"


def test_a_second_template_module_of_another_runtime_does_not_count(api, fleet):
    k3s = ModuleFactory(name="k3s-server-live", runtime=Module.Runtime.K3S)
    api.ok(
        "system_assign_module_to_template", {"template_id": fleet["template"]["id"], "module_id": str(k3s.id)}
    )
    agent = AgentClient(fleet["agent_token"])
    refused(
        agent,
        {"runtime": "docker", "phase": "installing"},
        status_code=409,
        error_type="RuntimeNotAssignedError",
    )
    assert NodeInstance.objects.get().status == NodeInstance.Status.PROVISIONED


def test_ca_failure_at_wants_cert_is_502_and_leaves_no_host(settings, tmp_path, agent):
    """The CA is called inside the host's transaction: when it fails, the new host row goes with it."""
    agent.ok("installing")
    settings.PKI_LOCAL_CA_DIR = tmp_path / "no-ca-here"
    error = refused(
        agent,
        {"runtime": "docker", "phase": "wants_cert", "csr_pem": make_csr()},
        status_code=502,
        error_type="CaUnavailableError",
    )
    assert error["message"]
    assert DockerHost.objects.count() == 0
