"""Issue 11 item 8b/8c: a repeated ``wants_cert`` revokes the replaced server certificate once the agent
posts ``ready``, and ``wants_cert`` is rate-limited per instance (counted from the CA's records)."""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from django.utils import timezone

from apps.docker_hosts.models import DockerHost
from apps.pki.models import IssuedCertificate
from apps.pki.services import ca_crl_pem
from tests.agents import AgentClient
from tests.csr import make_csr
from tests.handshake.conftest import assert_error, host_snapshot, state_counts

HANDSHAKE = "/api/v1/runtime/handshake"


def _in_crl(serial: str) -> bool:
    crl = x509.load_pem_x509_crl(ca_crl_pem().encode())
    return crl.get_revoked_certificate_by_serial_number(int(serial.replace(":", ""), 16)) is not None


def _server_serials(host_id: str) -> list[str]:
    return list(
        IssuedCertificate.objects.filter(host_id=host_id, kind="server")
        .order_by("created_at")
        .values_list("serial", flat=True)
    )


def test_ready_after_a_repeated_wants_cert_revokes_the_replaced_server_certificate(docker_fleet, agent):
    agent.walk_to_ready()
    host_id = DockerHost.objects.get().id
    [first] = _server_serials(host_id)

    agent.ok("wants_cert", csr_pem=make_csr())  # e.g. a stolen token asks for a new certificate
    first_row, second_row = IssuedCertificate.objects.filter(host_id=host_id, kind="server").order_by("created_at")
    # until the daemon confirms the new certificate, the one it serves with stays valid
    assert first_row.revoked_at is None and not _in_crl(first)

    agent.ok("wants_config")
    agent.ok("ready", version="20.10.24")
    first_row.refresh_from_db()
    second_row.refresh_from_db()
    assert first_row.revoked_at is not None and _in_crl(first)
    assert second_row.revoked_at is None and not _in_crl(second_row.serial)
    assert DockerHost.objects.get().server_cert_serial == second_row.serial
    # the platform's client certificate is not a server certificate: untouched
    assert not IssuedCertificate.objects.filter(host_id=host_id, kind="platform_client", revoked_at__isnull=False)


def test_several_replaced_certificates_are_all_revoked_and_a_second_ready_changes_nothing(docker_fleet, agent):
    agent.ok("installing")
    for _ in range(3):
        agent.ok("wants_cert", csr_pem=make_csr())
    agent.ok("wants_config")
    agent.ok("ready", version="20.10.24")
    host_id = DockerHost.objects.get().id
    *replaced, current = _server_serials(host_id)
    assert len(replaced) == 2 and all(_in_crl(s) for s in replaced)
    assert not _in_crl(current)
    before = state_counts()
    agent.ok("ready", version="20.10.24")
    assert state_counts() == before


def test_wants_cert_past_the_limit_is_a_429_that_changes_nothing(settings, docker_fleet, agent):
    settings.POWERNODE_WANTS_CERT_LIMIT = 3
    settings.POWERNODE_WANTS_CERT_WINDOW_S = 600
    agent.ok("installing")
    for _ in range(3):
        agent.ok("wants_cert", csr_pem=make_csr())
    before, hosts = state_counts(), host_snapshot()

    response = agent.client.post(
        HANDSHAKE, {"runtime": "docker", "phase": "wants_cert", "csr_pem": make_csr()}, format="json"
    )
    error = assert_error(response.status_code, response.json(), 429, "RateLimitedError")
    assert 0 < error["details"]["retry_after_s"] <= 600
    assert response["Retry-After"] == str(error["details"]["retry_after_s"])
    assert (state_counts(), host_snapshot()) == (before, hosts)

    # the window is counted from the CA's records: once the oldest leaves it, one more is allowed
    oldest = IssuedCertificate.objects.filter(kind="server").order_by("created_at").first()
    IssuedCertificate.objects.filter(pk=oldest.pk).update(created_at=timezone.now() - dt.timedelta(seconds=601))
    agent.ok("wants_cert", csr_pem=make_csr())
    assert agent.handshake("wants_cert", csr_pem=make_csr())[0] == 429


def test_the_limit_is_per_instance(api, settings, docker_fleet, agent):
    settings.POWERNODE_WANTS_CERT_LIMIT = 1
    agent.ok("wants_cert", csr_pem=make_csr())
    assert agent.handshake("wants_cert", csr_pem=make_csr())[0] == 429
    other = api.ok("system_provision_instance", {"template_id": docker_fleet["template"]["id"], "name": "node-2"})
    api.ok(
        "system_sdwan_attach_peer",
        {"network_id": docker_fleet["network"]["id"], "node_instance_id": other["instance"]["id"]},
    )
    AgentClient(other["agent_token"]).ok("wants_cert", csr_pem=make_csr())
