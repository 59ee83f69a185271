"""The platform's probe of a host's daemon (DESIGN §4 "Probe", issue 14 item 3).

``ready`` with the probe on (as shipped) against a closed local port: no fake, a real refused connection.
The periodic round's transitions (connected ↔ unreachable, events, the 409 of docker_* while unreachable)
are unit tests of the transition logic with a stand-in probe function; the lab (tests/lab/test_day2_lab.py)
kills a real dockerd.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import socket
import time

import pytest
from cryptography import x509
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone

from apps.docker_hosts import kinds
from apps.docker_hosts.models import DockerHost
from apps.docker_hosts.services.probe import ProbeResult, docker_host_probe_result, docker_probe_round
from apps.events.models import Event
from apps.pki import kinds as pki_kinds
from apps.pki.models import IssuedCertificate
from apps.pki.services import ca_crl_pem
from powernode.errors import DockerDaemonError
from tests.csr import make_csr
from tests.handshake.conftest import assert_error


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _kinds(host_id: str) -> list[str]:
    return list(Event.objects.filter(host_id=host_id).order_by("occurred_at", "id").values_list("kind", flat=True))


def _down(host: DockerHost) -> str:
    raise DockerDaemonError(f"cannot reach the Docker daemon at {host.api_endpoint}: connection refused")


def _up(host: DockerHost) -> str:
    return "20.10.24"


@pytest.fixture
def connected(agent) -> DockerHost:
    agent.walk_to_ready()  # the fast suite's settings skip the ready probe (tests/settings.py)
    host = DockerHost.objects.get()
    assert host.status == DockerHost.Status.CONNECTED
    return host


def test_ready_without_a_reachable_daemon_stays_pending_with_the_error(settings, agent):
    settings.POWERNODE_DOCKER_READY_PROBE = True
    settings.POWERNODE_DOCKER_PROBE_TIMEOUT_S = 2
    agent.ok("installing")
    host_id = agent.ok("wants_cert", csr_pem=make_csr())["host_id"]
    agent.ok("wants_config")
    endpoint = f"tcp://127.0.0.1:{_closed_port()}"  # nothing listens: the connection is refused at once
    DockerHost.objects.filter(pk=host_id).update(api_endpoint=endpoint)

    started = time.monotonic()
    answer = agent.ok("ready", version="20.10.24")
    assert time.monotonic() - started < 5
    host = DockerHost.objects.get(pk=host_id)
    assert host.status == DockerHost.Status.PENDING
    assert answer["status"] == "pending" and answer["next_phase"] is None
    assert "could not reach the daemon" in host.last_error and endpoint in host.last_error
    assert answer["error"] == host.last_error
    assert host.connected_at is None
    events = _kinds(host_id)
    assert events[-1] == kinds.READY_PROBE_FAILED
    assert kinds.READY not in events and kinds.PROVISIONED not in events


def test_ready_with_no_client_keypair_is_not_promoted(settings, agent):
    settings.POWERNODE_DOCKER_READY_PROBE = True
    agent.ok("installing")
    host_id = agent.ok("wants_cert", csr_pem=make_csr())["host_id"]
    agent.ok("wants_config")
    DockerHost.objects.filter(pk=host_id).update(client_cert_pem="", client_key_encrypted="")
    answer = agent.ok("ready", version="20.10.24")
    assert answer["status"] == "pending"
    assert "no platform client certificate" in DockerHost.objects.get(pk=host_id).last_error


def test_a_failed_probe_makes_a_connected_host_unreachable_and_a_good_one_brings_it_back(api, connected):
    counts = docker_probe_round(probe=_down)
    assert counts["probed"] == 1 and counts["unreachable"] == 1 and counts["answered"] == 0
    host = DockerHost.objects.get()
    assert host.status == DockerHost.Status.UNREACHABLE
    assert "connection refused" in host.last_error
    event = Event.objects.filter(kind=kinds.HOST_UNREACHABLE).get()
    assert event.host_id == host.id and "connection refused" in event.data["error"]

    # a second failed round changes nothing and records nothing
    before = Event.objects.count()
    assert docker_probe_round(probe=_down)["unreachable"] == 0
    assert Event.objects.count() == before

    # docker_* on an unreachable host: 409 at once, nothing recorded
    started = time.monotonic()
    status, body = api.call("docker_list_containers", {"host_id": host.id})
    assert time.monotonic() - started < 2
    error = assert_error(status, body, 409, "HostNotConnectedError")
    assert error["details"] == {"host_id": host.id, "status": "unreachable"}
    assert Event.objects.count() == before

    counts = docker_probe_round(probe=_up)
    assert counts["recovered"] == 1
    host.refresh_from_db()
    assert host.status == DockerHost.Status.CONNECTED and host.last_error == ""
    assert Event.objects.filter(kind=kinds.HOST_RECOVERED, host_id=host.id).get().data == {"version": "20.10.24"}
    assert docker_probe_round(probe=_up)["recovered"] == 0


def test_the_round_ignores_pending_failed_and_decommissioning_hosts(agent):
    agent.ok("installing")
    agent.ok("wants_cert", csr_pem=make_csr())
    calls = []
    counts = docker_probe_round(probe=lambda h: calls.append(h.id) or "x")
    assert counts["probed"] == 0 and calls == []


def test_a_result_for_a_host_that_moved_on_is_dropped(connected):
    DockerHost.objects.filter(pk=connected.id).update(status=DockerHost.Status.DECOMMISSIONING)
    before = Event.objects.count()
    assert docker_host_probe_result(ProbeResult(connected.id, "connected", False, "refused")) is None
    assert DockerHost.objects.get().status == DockerHost.Status.DECOMMISSIONING
    assert Event.objects.count() == before


def test_a_crashing_probe_counts_as_unreachable_and_the_round_goes_on(connected):
    def boom(host: DockerHost) -> str:
        raise RuntimeError("bug")

    assert docker_probe_round(probe=boom)["unreachable"] == 1
    assert "probe crashed" in DockerHost.objects.get().last_error


def test_ready_from_an_unreachable_host_reconnects_it_with_a_recovered_event(agent, connected):
    docker_probe_round(probe=_down)
    answer = agent.ok("ready", version="20.10.25")
    assert answer["status"] == "connected"
    host = DockerHost.objects.get()
    assert host.status == DockerHost.Status.CONNECTED and host.version == "20.10.25"
    assert _kinds(host.id)[-2:] == [kinds.READY, kinds.HOST_RECOVERED]


def test_unreachable_is_a_listed_status(api, connected):
    docker_probe_round(probe=_down)
    listed = api.ok("docker_list_hosts", {"status": "unreachable"})
    assert [h["id"] for h in listed["hosts"]] == [connected.id]
    assert api.ok("docker_list_hosts", {"status": "connected"})["hosts"] == []


def test_docker_probe_once_prints_the_round(connected, settings):
    settings.POWERNODE_DOCKER_PROBE_TIMEOUT_S = 1
    DockerHost.objects.filter(pk=connected.id).update(api_endpoint=f"tcp://127.0.0.1:{_closed_port()}")
    out = io.StringIO()
    call_command("docker_probe", "--once", stdout=out)
    counts = json.loads(out.getvalue())
    assert counts["probed"] == 1 and counts["unreachable"] == 1
    assert DockerHost.objects.get().status == DockerHost.Status.UNREACHABLE


def test_the_round_renews_the_platform_client_keypair_at_two_thirds_of_its_life(settings, connected):
    settings.POWERNODE_HOST_CERT_DAYS = 30
    old_serial = connected.client_cert_serial
    # 11 days left of 30: not yet
    DockerHost.objects.filter(pk=connected.id).update(client_cert_not_after=timezone.now() + dt.timedelta(days=11))
    assert docker_probe_round(probe=_up)["client_renewed"] == 0
    # 9 days left: past two thirds
    DockerHost.objects.filter(pk=connected.id).update(client_cert_not_after=timezone.now() + dt.timedelta(days=9))
    assert docker_probe_round(probe=_up)["client_renewed"] == 1
    host = DockerHost.objects.get()
    assert host.client_cert_serial != old_serial
    assert host.client_cert_not_after - timezone.now() > dt.timedelta(days=29)
    assert host.status == DockerHost.Status.CONNECTED


def _client_serials(host_id: str) -> dict[str, bool]:
    """The host's platform client certificates: serial → revoked."""
    rows = IssuedCertificate.objects.filter(host_id=host_id, kind=IssuedCertificate.Kind.PLATFORM_CLIENT)
    return {serial: revoked_at is not None for serial, revoked_at in rows.values_list("serial", "revoked_at")}


def _in_crl(serial: str) -> bool:
    crl = x509.load_pem_x509_crl(ca_crl_pem().encode())
    return crl.get_revoked_certificate_by_serial_number(int(serial.replace(":", ""), 16)) is not None


def test_the_replaced_client_keypair_is_revoked_once_the_daemon_answered_to_the_new_one(settings, connected):
    settings.POWERNODE_HOST_CERT_DAYS = 30
    old_serial = connected.client_cert_serial
    assert _client_serials(connected.id) == {old_serial: False}
    DockerHost.objects.filter(pk=connected.id).update(client_cert_not_after=timezone.now() + dt.timedelta(days=9))

    # renewed, but the daemon did not answer the probe made with the new keypair: the old one stays valid
    counts = docker_probe_round(probe=_down)
    assert counts["client_renewed"] == 1 and counts["client_revoked"] == 0
    new_serial = DockerHost.objects.get().client_cert_serial
    assert _client_serials(connected.id) == {old_serial: False, new_serial: False}

    # the daemon answers to the new keypair: the replaced one is revoked (CA's CRL and record), with its event
    probed_with = []
    counts = docker_probe_round(probe=lambda h: probed_with.append(h.client_cert_serial) or "20.10.24")
    assert probed_with == [new_serial] and counts["client_revoked"] == 1
    assert _client_serials(connected.id) == {old_serial: True, new_serial: False}
    assert _in_crl(old_serial) and not _in_crl(new_serial)
    revoked = Event.objects.filter(kind=pki_kinds.CERTIFICATE_REVOKED, data__serial=old_serial)
    assert revoked.count() == 1
    # and only once
    assert docker_probe_round(probe=_up)["client_revoked"] == 0
    assert revoked.count() == 1


def test_a_probe_made_with_a_keypair_renewed_since_revokes_nothing(connected):
    """The keypair changed between the probe and the revocation: the probe proved the old one, not the new."""
    old_serial = connected.client_cert_serial
    from apps.docker_hosts.services.client_keypair import CLIENT_KEYPAIR_FIELDS, client_keypair_issue
    from apps.docker_hosts.services.host_state import save_fields
    from apps.docker_hosts.services.probe import revoke_replaced_client_certificates
    from powernode.actors import Actor

    with transaction.atomic():
        host = DockerHost.objects.select_for_update().get()
        client_keypair_issue(host=host, actor=Actor(label="test"))
        save_fields(host, *CLIENT_KEYPAIR_FIELDS)
    result = ProbeResult(connected.id, DockerHost.Status.CONNECTED, True, "20.10.24", old_serial)
    assert revoke_replaced_client_certificates([result]) == []
    assert not any(_client_serials(connected.id).values())


def test_a_renewal_restart_is_not_unreachable_within_the_grace_and_is_after_it(settings, agent, connected):
    """The agent asked for a renewed certificate and restarts dockerd with it: a probe landing in that
    restart leaves the host connected (docker_* calls wait out the refused connections). A renewal whose
    ready never comes is unreachable once the grace is over."""
    settings.POWERNODE_DOCKER_RENEWAL_GRACE_S = 60
    agent.ok("wants_cert", csr_pem=make_csr(), renew=True)
    host = DockerHost.objects.get()
    assert host.status == DockerHost.Status.CONNECTED

    counts = docker_probe_round(probe=_down)
    assert counts["probed"] == 1 and counts["unreachable"] == 0
    host.refresh_from_db()
    assert host.status == DockerHost.Status.CONNECTED
    assert kinds.HOST_UNREACHABLE not in _kinds(host.id)

    DockerHost.objects.filter(pk=host.pk).update(cert_signed_at=timezone.now() - dt.timedelta(seconds=61))
    assert docker_probe_round(probe=_down)["unreachable"] == 1
    host.refresh_from_db()
    assert host.status == DockerHost.Status.UNREACHABLE


def test_without_a_renewal_in_flight_a_fresh_certificate_gives_no_grace(settings, connected):
    settings.POWERNODE_DOCKER_RENEWAL_GRACE_S = 60
    DockerHost.objects.filter(pk=connected.pk).update(cert_signed_at=timezone.now())
    assert docker_probe_round(probe=_down)["unreachable"] == 1
