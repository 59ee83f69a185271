"""InternalCaService through both adapters: records, events, revocation, CRL endpoint, status."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from django.test import Client

from apps.events.models import Event
from apps.pki import services
from apps.pki.adapters.base import format_serial
from apps.pki.models import IssuedCertificate
from powernode.errors import InvalidCsrError, NotFound, ValidationError
from tests.csr import greedy_sans, make_bad_signature_csr, make_csr
from tests.pki.helpers import CLIENT_AUTH, SERVER_AUTH, all_sans, common_name, eku, ip_sans, load_cert, openssl_verify

pytestmark = pytest.mark.django_db

HOST = "host-0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
OVERLAY = "fd00:abcd:1::42"
NETWORK = "0193a1b2-0000-7000-8000-00000000a001"


def crl_serials(pem: bytes) -> set[str]:
    return {format_serial(r.serial_number) for r in x509.load_pem_x509_crl(pem)}


def test_sign_host_csr_records_the_certificate(ca_backend: str) -> None:
    signed = services.ca_sign_host_csr(
        csr_pem=make_csr(common_name="evil", sans=greedy_sans()),
        host_id=HOST,
        overlay_address=f"{OVERLAY}/128",
    )
    cert = load_cert(signed.cert_pem)
    assert common_name(cert) == HOST
    assert ip_sans(cert) == [OVERLAY] and len(all_sans(cert)) == 1
    assert eku(cert) == [SERVER_AUTH]
    assert openssl_verify(signed.cert_pem, signed.chain_pem, purpose="sslserver").returncode == 0

    row = IssuedCertificate.objects.get(serial=signed.certificate.serial)
    assert row.serial == format_serial(cert.serial_number)
    assert row.kind == IssuedCertificate.Kind.SERVER
    assert row.common_name == HOST and row.host_id == HOST and row.sans == [OVERLAY]
    assert row.adapter == ca_backend
    assert row.not_after == cert.not_valid_after_utc and row.not_before == cert.not_valid_before_utc
    assert row.cert_pem == signed.cert_pem and row.revoked_at is None
    event = Event.objects.get(kind="system.pki.certificate.issued")
    assert event.host_id == HOST and event.data["serial"] == row.serial


@pytest.mark.parametrize(
    ("csr", "check"),
    [("", "present"), ("garbage", "pem"), ("rsa", "key_type"), ("bad-signature", "signature")],
)
def test_bad_csr_writes_nothing(ca_backend: str, csr: str, check: str) -> None:
    csr_pem = {"rsa": lambda: make_csr(key_type="rsa"), "bad-signature": make_bad_signature_csr}.get(
        csr, lambda: csr
    )()
    with pytest.raises(InvalidCsrError) as info:
        services.ca_sign_host_csr(csr_pem=csr_pem, host_id=HOST, overlay_address=OVERLAY)
    assert info.value.details["check"] == check
    assert not IssuedCertificate.objects.exists()
    assert not Event.objects.filter(kind__startswith="system.pki").exists()


@pytest.mark.parametrize("overlay", ["198.18.0.5", "not-an-address", ""])
def test_overlay_must_be_ipv6(ca_backend: str, overlay: str) -> None:
    with pytest.raises(ValidationError):
        services.ca_sign_host_csr(csr_pem=make_csr(), host_id=HOST, overlay_address=overlay)
    assert not IssuedCertificate.objects.exists()


def test_client_keypairs_for_platform_and_operator(ca_backend: str, django_user_model) -> None:  # noqa: ANN001
    platform = services.ca_issue_client_keypair(
        kind="platform_client", common_name=f"platform:{HOST}", host_id=HOST, network_id=NETWORK
    )
    cert = load_cert(platform.cert_pem)
    key = serialization.load_pem_private_key(platform.key_pem.encode(), password=None)
    assert cert.public_key() == key.public_key()
    assert eku(cert) == [CLIENT_AUTH] and all_sans(cert) == []
    assert openssl_verify(platform.cert_pem, platform.chain_pem, purpose="sslclient").returncode == 0
    assert platform.certificate.kind == "platform_client" and platform.certificate.host_id == HOST

    alice = django_user_model.objects.create_user("alice")
    export = services.ca_issue_client_keypair(
        kind="operator_client", common_name="operator:alice", operator=alice, network_id=NETWORK
    )
    row = IssuedCertificate.objects.get(serial=export.certificate.serial)
    assert row.operator == alice and row.host_id == ""
    # Operator exports are short-lived by default.
    assert row.not_after - dt.datetime.now(dt.UTC) <= services.OPERATOR_CLIENT_TTL + dt.timedelta(minutes=1)

    with pytest.raises(ValidationError):
        services.ca_issue_client_keypair(kind="server", common_name="x", network_id=NETWORK)
    with pytest.raises(ValidationError):
        services.ca_issue_client_keypair(kind="platform_client", common_name="platform:", network_id=NETWORK)


def test_revocation_updates_row_and_the_served_crl(ca_backend: str) -> None:
    keep = services.ca_sign_host_csr(csr_pem=make_csr(), host_id=HOST, overlay_address=OVERLAY)
    gone = services.ca_sign_host_csr(csr_pem=make_csr(), host_id=HOST, overlay_address=OVERLAY)
    row = services.ca_revoke(serial=gone.certificate.serial, reason="key compromise")
    assert row.revoked_at is not None and row.revocation_reason == "key compromise"
    assert Event.objects.filter(kind="system.pki.certificate.revoked", data__serial=row.serial).count() == 1
    # Repeating is a no-op (no second event), and plain hex names the same serial.
    services.ca_revoke(serial=gone.certificate.serial.replace(":", ""))
    assert Event.objects.filter(kind="system.pki.certificate.revoked").count() == 1

    response = Client().get("/api/v1/pki/crl")  # no credentials: the CRL is public
    assert response.status_code == 200
    assert response.content.startswith(b"-----BEGIN X509 CRL-----")
    serials = crl_serials(response.content)
    assert gone.certificate.serial in serials and keep.certificate.serial not in serials
    verdict = openssl_verify(
        gone.cert_pem, gone.chain_pem, purpose="sslserver", crl_pem=response.content.decode()
    )
    assert verdict.returncode != 0 and "revoked" in verdict.stdout + verdict.stderr

    with pytest.raises(NotFound):
        services.ca_revoke(serial="0a:0b:0c")


def test_revoke_every_certificate_of_a_host(ca_backend: str) -> None:
    first = services.ca_sign_host_csr(csr_pem=make_csr(), host_id=HOST, overlay_address=OVERLAY)
    replaced = services.ca_sign_host_csr(
        csr_pem=make_csr(), host_id=HOST, overlay_address=OVERLAY
    )  # wants_cert again
    client = services.ca_issue_client_keypair(
        kind="platform_client", common_name=f"platform:{HOST}", host_id=HOST, network_id=NETWORK
    )
    other = services.ca_sign_host_csr(
        csr_pem=make_csr(), host_id="host-other", overlay_address="fd00:abcd:1::43"
    )

    revoked = services.ca_revoke_host_certificates(host_id=HOST)
    expected = {first.certificate.serial, replaced.certificate.serial, client.certificate.serial}
    assert set(revoked) == expected
    assert not IssuedCertificate.objects.filter(host_id=HOST, revoked_at__isnull=True).exists()
    assert IssuedCertificate.objects.get(serial=other.certificate.serial).revoked_at is None
    # The served CRL is the server intermediate's: it lists the host's server certificates (a client
    # certificate's revocation is its network client CA's business; dockerd reads no CRL).
    assert {first.certificate.serial, replaced.certificate.serial} <= crl_serials(
        Client().get("/api/v1/pki/crl").content
    )
    assert services.ca_revoke_host_certificates(host_id=HOST) == []  # repeat: nothing left to do


def test_ca_chain_endpoint(ca_backend: str) -> None:
    response = Client().get("/api/v1/pki/ca")
    assert response.status_code == 200
    chain = x509.load_pem_x509_certificates(response.content)
    assert len(chain) == 2 and chain[1].subject == chain[1].issuer
    assert Client().post("/api/v1/pki/crl").status_code == 405


def test_status_names_the_adapter(ca_backend: str) -> None:
    status = services.ca_status()
    assert status["ca_adapter"] == ca_backend
    assert status["ca"]["reachable"] is True
    if ca_backend == "VaultCaAdapter":
        assert status["vault"]["configured"] is True and status["vault"]["reachable"] is True
        assert status["vault"]["mounts"] == {"pki_int": True, "pki": True}
        assert status["vault"]["roles"] == {"node": True, "node-client": True}
        assert "token" not in str(status).lower()
    else:
        assert status["vault"] == {
            "configured": False,
            "reachable": None,
            "kv_configured": False,
            "kv_pending_writes": 0,
        }


def test_provisioning_status_action_reports_the_adapter(ca_backend: str, api) -> None:  # noqa: ANN001
    body = api.ok("platform_provisioning_status")
    assert body["ca_adapter"] == ca_backend
    assert body["vault"]["configured"] is (ca_backend == "VaultCaAdapter")
