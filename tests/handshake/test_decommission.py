"""Decommission: operator request → heartbeat order → agent confirmation; revocation; instance deletion."""

from __future__ import annotations

import pytest
from cryptography import x509

from apps.docker_hosts.kinds import DECOMMISSION_SEQUENCE, PROVISIONING_SEQUENCE
from apps.docker_hosts.models import DockerHost
from apps.events.models import Event
from apps.nodes.services import instance_delete
from apps.pki.models import IssuedCertificate, VaultKvOutbox
from apps.pki.services import ca_crl_pem
from tests.csr import make_csr
from tests.handshake.conftest import assert_error, state_counts

# the host's last docker events: provisioned, then the decommission sequence (DESIGN §3)
END_SEQUENCE = [PROVISIONING_SEQUENCE[-1], *DECOMMISSION_SEQUENCE]


def docker_kinds(host_id: str) -> list[str]:
    return list(
        Event.objects.filter(host_id=host_id, kind__startswith="system.docker.")
        .order_by("occurred_at", "id")
        .values_list("kind", flat=True)
    )


def revoked_in_crl(serials: list[str]) -> set[str]:
    crl = x509.load_pem_x509_crl(ca_crl_pem().encode())
    wanted = {int(s.replace(":", ""), 16): s for s in serials}
    return {wanted[r.serial_number] for r in crl if r.serial_number in wanted}


def test_decommission_round_trip(api, docker_fleet, agent):
    agent.ok("installing")
    agent.ok("wants_cert", csr_pem=make_csr())
    agent.ok("wants_cert", csr_pem=make_csr())  # a replaced server certificate must be revoked too
    agent.ok("wants_config")
    agent.ok("ready", version="20.10.24")
    host = DockerHost.objects.get()

    answer = api.ok("system_decommission_docker_runtime", {"host_id": host.id})
    assert answer["host"]["status"] == "decommissioning" and answer["host"]["id"] == host.id
    assert api.ok("docker_list_hosts", {"status": "decommissioning"})["hosts"][0]["id"] == host.id
    # asking again changes nothing
    events = Event.objects.count()
    assert (
        api.ok("system_decommission_docker_runtime", {"host_id": host.id})["host"]["status"]
        == "decommissioning"
    )
    assert Event.objects.count() == events

    status, beat = agent.heartbeat()
    assert beat["runtime_orders"] == [{"runtime": "docker", "action": "decommission", "host_id": host.id}]

    serials = list(IssuedCertificate.objects.filter(host_id=host.id).values_list("serial", flat=True))
    assert len(serials) == 3  # two server certificates and the platform's client certificate
    # ready already revoked the replaced server certificate; decommission revokes the rest
    still_valid = list(
        IssuedCertificate.objects.filter(host_id=host.id, revoked_at__isnull=True).values_list("serial", flat=True)
    )
    assert len(still_valid) == 2
    assert agent.ok("decommissioned", host_id=host.id) == {"host_id": host.id, "status": "decommissioned"}

    host.refresh_from_db()
    assert host.status == DockerHost.Status.DECOMMISSIONED and host.decommissioned_at is not None
    assert (host.client_cert_pem, host.client_key_encrypted, host.client_chain_pem) == ("", "", "")
    assert not IssuedCertificate.objects.filter(host_id=host.id, revoked_at__isnull=True).exists()
    assert revoked_in_crl(serials) == set(serials)
    done = Event.objects.get(kind="system.docker.decommissioned")
    assert sorted(done.data["revoked_serials"]) == sorted(still_valid)
    assert docker_kinds(host.id)[-3:] == END_SEQUENCE
    # the Vault KV copy is written, then destroyed (both recorded as skipped here: no Vault configured)
    kv = list(VaultKvOutbox.objects.filter(path__contains=host.id).order_by("created_at"))
    assert [row.operation for row in kv] == ["write", "destroy"]
    # no more orders once it is over (the module is still assigned, but this runtime ended)
    assert agent.heartbeat()[1]["runtime_orders"] == []
    assert api.ok("docker_list_hosts", {"status": "connected"})["hosts"] == []


def test_decommission_refusals(api, docker_fleet, agent):
    status, body = api.call(
        "system_decommission_docker_runtime", {"host_id": "host-00000000-0000-7000-8000-000000000000"}
    )
    assert_error(status, body, 404, "NotFound")
    status, body = api.call("system_decommission_docker_runtime", {"host_id": "node-1"})
    assert_error(status, body, 400, "ValidationError")
    agent.walk_to_ready()
    host_id = DockerHost.objects.get().id
    api.ok("system_decommission_docker_runtime", {"host_id": host_id})
    agent.ok("decommissioned", host_id=host_id)
    before = state_counts()
    status, body = api.call("system_decommission_docker_runtime", {"host_id": host_id})
    assert_error(status, body, 409, "HostDecommissionedError")
    assert state_counts() == before


def test_decommission_needs_docker_provision(api_as, docker_fleet, agent):
    agent.walk_to_ready()
    viewer = api_as("viewer", perms=["docker_view"])
    host_id = viewer.ok("docker_list_hosts")["hosts"][0]["id"]
    status, body = viewer.call("system_decommission_docker_runtime", {"host_id": host_id})
    assert_error(status, body, 403, "PermissionDenied")
    assert DockerHost.objects.get().status == DockerHost.Status.CONNECTED


def test_agent_confirmation_without_an_order_still_ends_the_host(docker_fleet, agent):
    """The daemon is gone either way: the host must not keep claiming to be connected."""
    agent.walk_to_ready()
    host = DockerHost.objects.get()
    agent.ok("decommissioned", host_id=host.id)
    host.refresh_from_db()
    assert host.status == DockerHost.Status.DECOMMISSIONED
    requested = Event.objects.get(kind="system.docker.decommission.requested")
    assert requested.data == {"by": "agent"}
    assert docker_kinds(host.id)[-3:] == END_SEQUENCE


def test_instance_deletion_ends_its_host_at_once(api, docker_fleet, agent, admin_actor):
    agent.walk_to_ready()
    host = DockerHost.objects.get()
    instance_delete(instance_id=docker_fleet["instance"]["id"], actor=admin_actor)
    host.refresh_from_db()
    assert host.status == DockerHost.Status.DECOMMISSIONED
    assert host.client_key_encrypted == ""
    assert not IssuedCertificate.objects.filter(host_id=host.id, revoked_at__isnull=True).exists()
    assert docker_kinds(host.id)[-3:] == END_SEQUENCE
    assert Event.objects.get(kind="system.docker.decommissioned").data["reason"] == "instance deleted"


def test_instance_deletion_finishes_a_pending_decommission(api, docker_fleet, agent, admin_actor):
    agent.walk_to_ready()
    host = DockerHost.objects.get()
    api.ok("system_decommission_docker_runtime", {"host_id": host.id})
    instance_delete(instance_id=docker_fleet["instance"]["id"], actor=admin_actor)
    host.refresh_from_db()
    assert host.status == DockerHost.Status.DECOMMISSIONED
    assert Event.objects.filter(kind="system.docker.decommission.requested").count() == 1


def test_reassigning_after_decommission_provisions_a_new_host(api, docker_fleet, agent):
    agent.walk_to_ready()
    old = DockerHost.objects.get()
    api.ok("system_decommission_docker_runtime", {"host_id": old.id})
    agent.ok("decommissioned", host_id=old.id)
    ids = {"template_id": docker_fleet["template"]["id"], "module_id": str(docker_fleet["docker_module"].id)}
    api.ok("system_unassign_module_from_template", ids)
    api.ok("system_assign_module_to_template", ids)
    assert agent.heartbeat()[1]["runtime_orders"] == [
        {"runtime": "docker", "action": "provision", "host_id": None}
    ]
    agent.walk_to_ready()
    new = DockerHost.objects.exclude(pk=old.id).get()
    assert new.status == DockerHost.Status.CONNECTED
    assert DockerHost.objects.get(pk=old.id).status == DockerHost.Status.DECOMMISSIONED
    instance = api.ok("system_get_instance", {"id": docker_fleet["instance"]["id"]})["instance"]
    assert instance["docker_host_id"] == new.id


def test_list_hosts_filters(api, docker_fleet, agent):
    agent.walk_to_ready()
    host_id = DockerHost.objects.get().id
    net = docker_fleet["network"]["id"]
    assert [h["id"] for h in api.ok("docker_list_hosts", {"network_id": net})["hosts"]] == [host_id]
    other = api.ok("system_sdwan_create_network", {"name": "net-b", "prefix": "fd00:abcd:2::/64"})["network"]
    assert api.ok("docker_list_hosts", {"network_id": other["id"]})["hosts"] == []
    assert api.ok("docker_list_hosts", {"status": "pending"})["hosts"] == []
    status, body = api.call("docker_list_hosts", {"status": "sleeping"})
    assert_error(status, body, 400, "ValidationError")


@pytest.mark.parametrize("perms, status_code", [([], 403), (["docker_view"], 200)])
def test_list_hosts_permission(api_as, docker_fleet, perms, status_code):
    status, _ = api_as("someone", perms=perms).call("docker_list_hosts")
    assert status == status_code


def test_provisioning_status_counts_hosts(api, docker_fleet, agent):
    agent.walk_to_ready()
    counts = api.ok("platform_provisioning_status")["docker_hosts"]
    assert counts == {
        "pending": 0,
        "connected": 1,
        "unreachable": 0,
        "decommissioning": 0,
        "decommissioned": 0,
        "failed": 0,
    }
