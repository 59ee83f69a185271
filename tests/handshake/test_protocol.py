"""The whole docker handshake over HTTP: answers, events in order, certificate, daemon.json, promotion."""

from __future__ import annotations

import ipaddress

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from apps.docker_hosts.kinds import PROVISIONING_SEQUENCE
from apps.docker_hosts.models import DockerHost
from apps.events.models import Event
from apps.pki.models import IssuedCertificate
from powernode import secretbox
from tests.csr import greedy_sans, make_csr


def docker_kinds_oldest_first(api) -> list[str]:  # noqa: ANN001
    events = api.ok("recent_events", {"kind_prefix": "system.docker", "limit": 100})["events"]
    return [e["kind"] for e in reversed(events)]


def test_full_handshake_events_answers_and_host(api, docker_fleet, agent):
    answers = agent.walk_to_ready(version="25.0.3")
    overlay = docker_fleet["peer"]["overlay_address"]

    assert answers["installing"] == {"next_phase": "wants_cert"}
    cert_answer = answers["wants_cert"]
    host_id = cert_answer["host_id"]
    assert host_id.startswith("host-") and len(host_id) == len("host-") + 36
    assert cert_answer["next_phase"] == "wants_config"
    assert answers["wants_config"] == {
        "host_id": host_id,
        "daemon_config": {
            "hosts": [f"tcp://[{overlay}]:2376"],
            "ip": overlay,  # ports published from the Docker CLI listen on the overlay only
            "tls": True,
            "tlsverify": True,
            "tlscacert": "/etc/docker/powernode/ca.pem",
            "tlscert": "/etc/docker/powernode/cert.pem",
            "tlskey": "/etc/docker/powernode/key.pem",
            "live-restore": True,  # containers keep running while a renewal restarts dockerd
        },
        "next_phase": "ready",
    }
    assert answers["ready"] == {"host_id": host_id, "status": "connected", "next_phase": None}

    assert docker_kinds_oldest_first(api) == list(PROVISIONING_SEQUENCE)
    hosts = api.ok("docker_list_hosts")["hosts"]
    assert [
        (h["id"], h["node_instance_id"], h["api_endpoint"], h["status"], h["version"]) for h in hosts
    ] == [(host_id, docker_fleet["instance"]["id"], f"tcp://[{overlay}]:2376", "connected", "25.0.3")]
    instance = api.ok("system_get_instance", {"id": docker_fleet["instance"]["id"]})["instance"]
    assert instance["docker_host_id"] == host_id


def test_server_certificate_is_what_the_platform_decides(docker_fleet, agent):
    """CN = host id, the only SAN = the overlay /128, serverAuth, chain verifies: whatever the CSR asked."""
    agent.ok("installing")
    csr = make_csr(common_name="root", sans=greedy_sans())
    answer = agent.ok("wants_cert", csr_pem=csr)
    cert = x509.load_pem_x509_certificate(answer["cert_pem"].encode())
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == answer["host_id"]
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address(docker_fleet["peer"]["overlay_address"])
    ]
    assert san.get_values_for_type(x509.DNSName) == []
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    chain = x509.load_pem_x509_certificates(answer["chain_pem"].encode())
    assert len(chain) == 2  # intermediate then root
    cert.verify_directly_issued_by(chain[0])
    chain[0].verify_directly_issued_by(chain[1])
    # the agent's key is in the certificate; the platform never saw a private key for it
    assert cert.public_key() == x509.load_pem_x509_csr(csr.encode()).public_key()


def test_platform_client_keypair_is_mirrored_on_the_row(docker_fleet, agent):
    agent.ok("installing")
    host_id = agent.ok("wants_cert", csr_pem=make_csr())["host_id"]
    host = DockerHost.objects.get(pk=host_id)
    assert host.status == DockerHost.Status.PENDING
    assert host.client_cert_pem and host.client_chain_pem and host.client_cert_serial
    key_pem = secretbox.decrypt(host.client_key_encrypted)
    assert "PRIVATE KEY" in key_pem and "PRIVATE KEY" not in host.client_key_encrypted
    cert = x509.load_pem_x509_certificate(host.client_cert_pem.encode())
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    kinds = sorted(IssuedCertificate.objects.filter(host_id=host_id).values_list("kind", flat=True))
    assert kinds == ["platform_client", "server"]


def test_repeated_wants_cert_resigns_for_the_same_host(docker_fleet, agent):
    agent.ok("installing")
    first = agent.ok("wants_cert", csr_pem=make_csr())
    second = agent.ok("wants_cert", csr_pem=make_csr())
    assert first["host_id"] == second["host_id"]
    assert DockerHost.objects.count() == 1
    serials = [x509.load_pem_x509_certificate(a["cert_pem"].encode()).serial_number for a in (first, second)]
    assert serials[0] != serials[1]
    host = DockerHost.objects.get()
    # the client keypair is issued once, not per wants_cert
    assert IssuedCertificate.objects.filter(host_id=host.id, kind="platform_client").count() == 1
    assert IssuedCertificate.objects.filter(host_id=host.id, kind="server").count() == 2
    signed = Event.objects.filter(kind="system.docker.handshake.cert_signed").order_by("occurred_at", "id")
    assert [e.data["replaces"] for e in signed] == [None, signed[0].data["serial"]]


def test_wants_cert_again_with_the_same_key_gets_the_same_certificate(docker_fleet, agent):
    """An agent that lost the answer posts its CSR again (it keeps its key): one certificate for one key."""
    agent.ok("installing")
    csr = make_csr()
    first = agent.ok("wants_cert", csr_pem=csr)
    again = agent.ok("wants_cert", csr_pem=csr)
    assert again == first
    host = DockerHost.objects.get()
    assert IssuedCertificate.objects.filter(host_id=host.id, kind="server").count() == 1
    assert host.server_cert_serial == IssuedCertificate.objects.get(host_id=host.id, kind="server").serial
    wants = Event.objects.filter(kind="system.docker.handshake.wants_cert").order_by("occurred_at", "id")
    assert [e.data.get("resent_serial") for e in wants] == [None, host.server_cert_serial]
    assert Event.objects.filter(kind="system.docker.handshake.cert_signed").count() == 1
    # the walk goes on as usual
    agent.ok("wants_config")
    assert agent.ok("ready", version="20.10.24")["status"] == "connected"


def test_wants_cert_with_the_same_key_signs_again_once_that_certificate_is_revoked(docker_fleet, agent):
    from apps.pki.services import ca_revoke

    agent.ok("installing")
    csr = make_csr()
    first = agent.ok("wants_cert", csr_pem=csr)
    ca_revoke(serial=DockerHost.objects.get().server_cert_serial, reason="test")
    again = agent.ok("wants_cert", csr_pem=csr)
    assert again["cert_pem"] != first["cert_pem"]
    assert IssuedCertificate.objects.filter(kind="server").count() == 2


def test_second_ready_changes_nothing(docker_fleet, agent):
    agent.walk_to_ready(version="20.10.24")
    before = (
        Event.objects.count(),
        list(DockerHost.objects.values_list("status", "version", "connected_at")),
    )
    assert agent.ok("ready", version="20.10.24") == {
        "host_id": DockerHost.objects.get().id,
        "status": "connected",
        "next_phase": None,
    }
    after = (Event.objects.count(), list(DockerHost.objects.values_list("status", "version", "connected_at")))
    assert after == before


def test_new_engine_version_on_ready_is_recorded_without_promotion_events(api, docker_fleet, agent):
    agent.walk_to_ready(version="20.10.24")
    agent.ok("ready", version="20.10.25")
    assert DockerHost.objects.get().version == "20.10.25"
    kinds = docker_kinds_oldest_first(api)
    assert kinds.count("system.docker.provisioned") == 1
    assert kinds[-1] == "system.docker.host.version_changed"


def test_failed_is_recorded_and_a_new_walk_recovers(api, docker_fleet, agent):
    agent.ok("installing")
    agent.ok("wants_cert", csr_pem=make_csr())
    answer = agent.ok("failed", error="wants_config: /etc/docker is not writable")
    host = DockerHost.objects.get()
    assert answer == {"host_id": host.id, "recorded": True}
    assert host.status == DockerHost.Status.FAILED
    assert host.last_error == "wants_config: /etc/docker is not writable"
    failed = Event.objects.get(kind="system.docker.handshake.failed")
    assert failed.host_id == host.id and failed.data["error"] == host.last_error
    # the agent starts again from wants_cert: same host, back to pending, then connected
    assert agent.ok("wants_cert", csr_pem=make_csr())["host_id"] == host.id
    assert DockerHost.objects.get().status == DockerHost.Status.PENDING
    agent.ok("wants_config")
    agent.ok("ready", version="20.10.24")
    host.refresh_from_db()
    assert (host.status, host.last_error) == (DockerHost.Status.CONNECTED, "")


def test_failed_before_any_host_records_an_event_only(docker_fleet, agent):
    agent.ok("installing")
    assert agent.ok("failed", error="installing: apt-get failed") == {"host_id": None, "recorded": True}
    assert DockerHost.objects.count() == 0
    event = Event.objects.get(kind="system.docker.handshake.failed")
    assert event.instance_id is not None and event.host_id == ""


def test_every_event_carries_instance_and_agent_actor(docker_fleet, agent):
    agent.walk_to_ready()
    host_id = DockerHost.objects.get().id
    events = Event.objects.filter(kind__startswith="system.docker.").exclude(
        kind="system.docker.module.assigned"
    )
    assert events.count() == 6
    for event in events:
        assert str(event.instance_id) == docker_fleet["instance"]["id"]
        assert event.actor == "agent:node-1"
        if event.kind != "system.docker.runtime.installing":
            assert event.host_id == host_id


def test_daemon_trusts_only_its_networks_client_ca(api, docker_fleet, agent):
    """wants_cert hands the agent its network's client CA (tlscacert) beside the unchanged server chain; the
    platform's client keypair for the host comes from that CA, and another network's CA did not issue it."""
    agent.ok("installing")
    answer = agent.ok("wants_cert", csr_pem=make_csr())
    network_id = docker_fleet["network"]["id"]

    client_cas = x509.load_pem_x509_certificates(answer["client_ca_pem"].encode())
    assert len(client_cas) == 1  # that CA alone: not the root, which would accept every network's certs
    client_ca = client_cas[0]
    assert client_ca.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value.endswith(network_id)
    chain = x509.load_pem_x509_certificates(answer["chain_pem"].encode())
    assert client_ca not in chain  # the server chain is a different thing, and unchanged
    client_ca.verify_directly_issued_by(chain[1])  # signed by the same root

    host = DockerHost.objects.get(pk=answer["host_id"])
    presented = x509.load_pem_x509_certificates(host.client_cert_pem.encode())
    assert presented[1] == client_ca  # the leaf, then its client CA
    presented[0].verify_directly_issued_by(client_ca)
    # the platform verifies the daemon with the server chain
    assert x509.load_pem_x509_certificates(host.client_chain_pem.encode()) == chain

    other = api.ok("system_sdwan_create_network", {"name": "net-b", "prefix": "fd00:abcd:2::/64"})["network"]
    other_ca = x509.load_pem_x509_certificate(
        api.ok("system_export_operator_cert", {"network_id": other["id"]})["client_ca_pem"].encode()
    )
    assert other_ca != client_ca
    try:
        presented[0].verify_directly_issued_by(other_ca)
    except Exception:  # noqa: BLE001 - InvalidSignature or ValueError (issuer name differs)
        pass
    else:
        raise AssertionError("network B's client CA accepted the platform's client cert for a host of network A")

    config = agent.ok("wants_config")["daemon_config"]
    assert config["tlscacert"].endswith("/ca.pem")
