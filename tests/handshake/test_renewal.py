"""Certificate renewal (DESIGN §4 "Renewal", issue 14 item 4): the heartbeat carries ``cert_not_after`` and,
at two thirds of the certificate's life, a ``renew`` order; ``wants_cert`` with ``renew: true`` keeps the host
connected with the same CN and SAN and a new serial; the old serial is revoked at the next ``ready``."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from django.utils import timezone

from apps.docker_hosts import kinds
from apps.docker_hosts.models import DockerHost
from apps.events.models import Event
from apps.pki.models import IssuedCertificate
from apps.pki.services import ca_crl_pem
from tests.csr import make_csr
from tests.handshake.conftest import assert_error, host_snapshot, state_counts


def _in_crl(serial: str) -> bool:
    crl = x509.load_pem_x509_crl(ca_crl_pem().encode())
    return crl.get_revoked_certificate_by_serial_number(int(serial.replace(":", ""), 16)) is not None


def _docker_orders(agent) -> list[dict]:
    return agent.heartbeat_ok(runtimes={"docker": {"phase": "ready"}})["runtime_orders"]


def _cn_and_sans(cert_pem: str) -> tuple[str, list[str]]:
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return cn, [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)]


@pytest.fixture
def connected(settings, agent) -> tuple[DockerHost, dict]:
    settings.POWERNODE_HOST_CERT_DAYS = 30
    answers = agent.walk_to_ready()
    return DockerHost.objects.get(), answers


def test_lifetime_is_a_setting_and_minutes_override_days(settings, agent):
    settings.POWERNODE_HOST_CERT_DAYS = 30
    agent.ok("installing")
    agent.ok("wants_cert", csr_pem=make_csr())
    host = DockerHost.objects.get()
    left = host.server_cert_not_after - timezone.now()
    assert dt.timedelta(days=29, hours=23) < left <= dt.timedelta(days=30)
    assert host.client_cert_not_after - timezone.now() > dt.timedelta(days=29, hours=23)

    settings.POWERNODE_HOST_CERT_MINUTES = 10
    agent.ok("wants_cert", csr_pem=make_csr())
    host.refresh_from_db()
    assert dt.timedelta(minutes=9) < host.server_cert_not_after - timezone.now() <= dt.timedelta(minutes=10)


def test_heartbeat_carries_cert_not_after_and_the_renew_order_only_past_two_thirds(agent, connected):
    host, _ = connected
    orders = _docker_orders(agent)
    assert orders == [
        {
            "runtime": "docker",
            "action": "provision",
            "host_id": host.id,
            "cert_not_after": host.server_cert_not_after.isoformat(),
        }
    ]
    # 10 days and a minute left of 30: not yet
    DockerHost.objects.filter(pk=host.id).update(
        server_cert_not_after=timezone.now() + dt.timedelta(days=10, minutes=1)
    )
    assert [o["action"] for o in _docker_orders(agent)] == ["provision"]
    # a minute under 10 days left: two thirds of the life are over
    DockerHost.objects.filter(pk=host.id).update(
        server_cert_not_after=timezone.now() + dt.timedelta(days=10) - dt.timedelta(minutes=1)
    )
    assert _docker_orders(agent)[1:] == [{"runtime": "docker", "action": "renew", "host_id": host.id}]
    # only a connected host is told to renew
    DockerHost.objects.filter(pk=host.id).update(status=DockerHost.Status.UNREACHABLE)
    assert [o["action"] for o in _docker_orders(agent)] == ["provision"]


def test_renew_keeps_the_host_connected_and_revokes_the_old_serial_at_the_next_ready(agent, connected):
    host, answers = connected
    old_serial = host.server_cert_serial
    old_cn, old_sans = _cn_and_sans(answers["wants_cert"]["cert_pem"])
    DockerHost.objects.filter(pk=host.id).update(server_cert_not_after=timezone.now() + dt.timedelta(days=1))

    renewed = agent.ok("wants_cert", csr_pem=make_csr(), renew=True)
    assert renewed["host_id"] == host.id
    host.refresh_from_db()
    assert host.status == DockerHost.Status.CONNECTED  # operators keep driving it during the renewal
    assert host.server_cert_serial != old_serial
    assert host.server_cert_not_after - timezone.now() > dt.timedelta(days=29)
    assert _cn_and_sans(renewed["cert_pem"]) == (old_cn, old_sans) == (host.id, [host.overlay_address])
    # the daemon still serves the old certificate until it restarted: not revoked yet
    assert not _in_crl(old_serial)
    # until a ready confirms the new certificate, the renewal is in flight: the order stays (an agent that
    # stopped between its wants_cert and its ready answers it again)
    assert [o["action"] for o in _docker_orders(agent)] == ["provision", "renew"]

    agent.ok("wants_config")
    answer = agent.ok("ready", version="20.10.24")
    assert answer["status"] == "connected"
    assert _in_crl(old_serial) and not _in_crl(host.server_cert_serial)
    assert IssuedCertificate.objects.get(serial=old_serial).revoked_at is not None
    event = Event.objects.filter(kind=kinds.CERT_RENEWED).get()
    assert event.host_id == host.id
    assert event.data["serial"] == host.server_cert_serial and event.data["revoked"] == [old_serial]
    # no second promotion: still one provisioned event
    assert Event.objects.filter(kind=kinds.PROVISIONED, host_id=host.id).count() == 1
    assert DockerHost.objects.get().id == host.id
    assert [o["action"] for o in _docker_orders(agent)] == ["provision"]  # renewed: no order any more


def _colon(cert_pem: str) -> str:
    text = format(x509.load_pem_x509_certificate(cert_pem.encode()).serial_number, "x")
    text = text.zfill(len(text) + len(text) % 2)
    return ":".join(text[i : i + 2] for i in range(0, len(text), 2))


def test_a_renewal_interrupted_before_ready_is_ordered_again_and_ends_consistent(agent, connected):
    """The agent stops after the platform signed the renewed certificate and before it wrote it: its dockerd
    serves the old certificate. The platform keeps ordering renew, revokes nothing while a ready names the old
    certificate, and once a ready names the newest one, every replaced serial is revoked, once."""
    host, answers = connected
    old_serial = host.server_cert_serial
    assert _colon(answers["wants_cert"]["cert_pem"]) == old_serial
    DockerHost.objects.filter(pk=host.id).update(server_cert_not_after=timezone.now() + dt.timedelta(days=1))
    lost = agent.ok("wants_cert", csr_pem=make_csr(), renew=True)  # the answer the crashed agent never wrote
    lost_serial = _colon(lost["cert_pem"])
    assert DockerHost.objects.get().server_cert_serial == lost_serial

    # the new certificate's life is long, but the renewal is not confirmed: renew is still ordered
    assert [o["action"] for o in _docker_orders(agent)] == ["provision", "renew"]
    # dockerd (restarted with the old files) reports ready with the old certificate: nothing is revoked
    assert agent.ok("ready", version="20.10.24", cert_serial=old_serial)["status"] == "connected"
    assert not _in_crl(old_serial) and not _in_crl(lost_serial)
    assert not Event.objects.filter(kind=kinds.CERT_RENEWED).exists()
    assert [o["action"] for o in _docker_orders(agent)] == ["provision", "renew"]

    # the agent answers the repeated order: a new certificate, dockerd restarted, ready with its serial
    renewed = agent.ok("wants_cert", csr_pem=make_csr(), renew=True)
    new_serial = _colon(renewed["cert_pem"])
    agent.ok("wants_config")
    assert agent.ok("ready", version="20.10.24", cert_serial=new_serial)["status"] == "connected"
    host.refresh_from_db()
    assert host.server_cert_serial == new_serial and host.status == DockerHost.Status.CONNECTED
    assert _in_crl(old_serial) and _in_crl(lost_serial) and not _in_crl(new_serial)
    event = Event.objects.filter(kind=kinds.CERT_RENEWED).get()
    assert sorted(event.data["revoked"]) == sorted([old_serial, lost_serial])
    assert [o["action"] for o in _docker_orders(agent)] == ["provision"]
    # a repeated ready changes nothing more
    agent.ok("ready", version="20.10.24", cert_serial=new_serial)
    assert Event.objects.filter(kind=kinds.CERT_RENEWED).count() == 1
    unrevoked = IssuedCertificate.objects.filter(host_id=host.id, kind="server", revoked_at__isnull=True)
    assert list(unrevoked.values_list("serial", flat=True)) == [new_serial]


@pytest.mark.parametrize("serial", ["not hex", "", 12, ["0a"]])
def test_ready_with_a_bad_cert_serial_is_400_and_changes_nothing(agent, connected, serial):
    before, hosts = state_counts(), host_snapshot()
    status, body = agent.handshake("ready", version="20.10.24", cert_serial=serial)
    error = assert_error(status, body, 400, "ValidationError")
    assert "cert_serial" in error["details"]["fields"]
    assert (state_counts(), host_snapshot()) == (before, hosts)


@pytest.mark.parametrize("renew", ["yes", 1, None, [], {}])
def test_renew_that_is_not_a_boolean_is_400_and_changes_nothing(agent, connected, renew):
    before, hosts = state_counts(), host_snapshot()
    status, body = agent.handshake("wants_cert", csr_pem=make_csr(), renew=renew)
    error = assert_error(status, body, 400, "ValidationError")
    assert error["details"]["fields"] == {"renew": "must be true or false"}
    assert (state_counts(), host_snapshot()) == (before, hosts)


def test_renew_of_a_pending_host_is_409_and_changes_nothing(agent):
    agent.ok("installing")
    host_id = agent.ok("wants_cert", csr_pem=make_csr())["host_id"]
    before, hosts = state_counts(), host_snapshot()
    status, body = agent.handshake("wants_cert", csr_pem=make_csr(), renew=True)
    error = assert_error(status, body, 409, "HostNotConnectedError")
    assert error["details"] == {"host_id": host_id, "status": "pending"}
    assert (state_counts(), host_snapshot()) == (before, hosts)


def test_renew_before_any_host_is_409_and_changes_nothing(agent):
    agent.ok("installing")
    before = state_counts()
    status, body = agent.handshake("wants_cert", csr_pem=make_csr(), renew=True)
    assert_error(status, body, 409, "HostNotConnectedError")
    assert state_counts() == before


def test_renew_with_a_bad_csr_is_400_and_changes_nothing(agent, connected):
    before, hosts = state_counts(), host_snapshot()
    status, body = agent.handshake("wants_cert", csr_pem="not a csr", renew=True)
    assert_error(status, body, 400, "InvalidCsrError")
    assert (state_counts(), host_snapshot()) == (before, hosts)


def test_a_renewal_whose_restart_the_probe_saw_as_unreachable_still_records_the_renewal(settings, agent, connected):
    """dockerd restarts with the new certificate and takes longer than the probe's renewal grace (none here);
    a probe round in that moment marks the host unreachable; the agent's ready then both confirms the
    renewal and reconnects the host."""
    settings.POWERNODE_DOCKER_RENEWAL_GRACE_S = 0
    from apps.docker_hosts.services.probe import docker_probe_round
    from powernode.errors import DockerDaemonError

    host, _ = connected
    old_serial = host.server_cert_serial
    agent.ok("wants_cert", csr_pem=make_csr(), renew=True)

    def down(h: DockerHost) -> str:
        raise DockerDaemonError("connection refused")

    docker_probe_round(probe=down)
    assert DockerHost.objects.get().status == DockerHost.Status.UNREACHABLE
    agent.ok("wants_config")
    assert agent.ok("ready", version="20.10.24")["status"] == "connected"
    assert _in_crl(old_serial)
    renewed = Event.objects.filter(kind=kinds.CERT_RENEWED).get()
    assert renewed.data["revoked"] == [old_serial]
    kinds_after = list(
        Event.objects.filter(host_id=host.id, occurred_at__gte=renewed.occurred_at)
        .order_by("occurred_at", "id")
        .values_list("kind", flat=True)
    )
    assert kinds_after == [kinds.CERT_RENEWED, kinds.READY, kinds.HOST_RECOVERED]
