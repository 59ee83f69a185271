"""One contract, both adapters: every test here runs against LocalCaAdapter and a real OpenBao."""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
import subprocess
import tempfile
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from apps.pki.adapters.base import CaAdapter, format_serial
from apps.pki.adapters.csr import MAX_CSR_BYTES
from powernode.errors import InvalidCsrError, NotFound, ValidationError
from tests.csr import greedy_sans, make_bad_signature_csr, make_csr
from tests.pki.helpers import (
    CLIENT_AUTH,
    SERVER_AUTH,
    all_sans,
    common_name,
    eku,
    ip_sans,
    load_cert,
    openssl_text,
    openssl_verify,
    split_pems,
)

OVERLAY = "fd00:abcd:1::42"
HOUR = dt.timedelta(hours=1)
SERIAL_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2})*$")


def sign_server(adapter: CaAdapter, csr_pem: str, *, cn: str = "host-0a1b", overlay: str = OVERLAY):
    return adapter.sign_csr(csr_pem=csr_pem, common_name=cn, ip_sans=[overlay], usage="server", ttl=HOUR)


def test_server_cert_has_platform_subject_whatever_the_csr_asks(ca_adapter: CaAdapter) -> None:
    csr = make_csr(common_name="i-am-root", sans=greedy_sans())
    signed = sign_server(ca_adapter, csr, cn="host-7f3e")
    cert = load_cert(signed.cert_pem)

    assert common_name(cert) == "host-7f3e"
    assert all_sans(cert) == [x509.IPAddress(ipaddress.ip_address(OVERLAY))]
    assert eku(cert) == [SERVER_AUTH]
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert isinstance(cert.public_key(), ed25519.Ed25519PublicKey)
    # The certified key is the CSR's key, not one the CA made.
    assert cert.public_key() == x509.load_pem_x509_csr(csr.encode()).public_key()

    # A second implementation agrees: openssl sees the same CN, the one SAN, the EKU, and a valid chain.
    text = openssl_text(signed.cert_pem)
    assert "CN = host-7f3e" in text
    assert re.search(r"X509v3 Subject Alternative Name:\s*\n\s*IP Address:FD00:ABCD:1:0:0:0:0:42\s*\n", text)
    assert "evil.example" not in text and "spiffe" not in text and "i-am-root" not in text
    assert re.search(r"X509v3 Extended Key Usage:\s*\n\s*TLS Web Server Authentication\s*\n", text)
    ok = openssl_verify(signed.cert_pem, signed.chain_pem, purpose="sslserver")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    wrong = openssl_verify(signed.cert_pem, signed.chain_pem, purpose="sslclient")
    assert wrong.returncode != 0, "a server certificate must not pass as a TLS client"


def test_serial_and_validity_are_reported_in_canonical_form(ca_adapter: CaAdapter) -> None:
    before = dt.datetime.now(dt.UTC)
    signed = sign_server(ca_adapter, make_csr())
    cert = load_cert(signed.cert_pem)
    assert SERIAL_RE.match(signed.serial), signed.serial
    assert signed.serial == format_serial(cert.serial_number)
    assert signed.not_before == cert.not_valid_before_utc <= before
    assert signed.not_after == cert.not_valid_after_utc
    assert (
        before + HOUR - dt.timedelta(minutes=2) <= signed.not_after <= before + HOUR + dt.timedelta(minutes=2)
    )


def test_ttl_above_the_maximum_is_capped(ca_adapter: CaAdapter) -> None:
    signed = ca_adapter.sign_csr(
        csr_pem=make_csr(),
        common_name="host-cap",
        ip_sans=[OVERLAY],
        usage="server",
        ttl=dt.timedelta(days=365 * 30),
    )
    assert signed.not_after <= dt.datetime.now(dt.UTC) + dt.timedelta(days=366)


def test_ecdsa_p256_csr_is_accepted(ca_adapter: CaAdapter) -> None:
    signed = sign_server(ca_adapter, make_csr(key_type="p256"))
    assert ip_sans(load_cert(signed.cert_pem)) == [OVERLAY]
    assert openssl_verify(signed.cert_pem, signed.chain_pem, purpose="sslserver").returncode == 0


def test_client_csr_gets_client_auth_only(ca_adapter: CaAdapter) -> None:
    signed = ca_adapter.sign_csr(
        csr_pem=make_csr(sans=greedy_sans()),
        common_name="operator:alice",
        ip_sans=[],
        usage="client",
        ttl=HOUR,
    )
    cert = load_cert(signed.cert_pem)
    assert common_name(cert) == "operator:alice"
    assert eku(cert) == [CLIENT_AUTH]
    assert all_sans(cert) == []


def test_issue_keypair_makes_an_ed25519_client_identity(ca_adapter: CaAdapter) -> None:
    issued = ca_adapter.issue_keypair(common_name="platform:host-9", ttl=HOUR)
    cert = load_cert(issued.cert_pem)
    key = serialization.load_pem_private_key(issued.key_pem.encode(), password=None)

    assert isinstance(key, ed25519.Ed25519PrivateKey)
    assert cert.public_key() == key.public_key()
    assert common_name(cert) == "platform:host-9"
    assert eku(cert) == [CLIENT_AUTH]
    assert all_sans(cert) == []
    assert issued.serial == format_serial(cert.serial_number)
    ok = openssl_verify(issued.cert_pem, issued.chain_pem, purpose="sslclient")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert openssl_verify(issued.cert_pem, issued.chain_pem, purpose="sslserver").returncode != 0


def test_chain_is_intermediate_then_root(ca_adapter: CaAdapter) -> None:
    chain = split_pems(ca_adapter.ca_chain_pem())
    assert len(chain) == 2
    intermediate, root = chain
    assert root.subject == root.issuer  # self-signed anchor
    assert intermediate.issuer == root.subject
    intermediate.verify_directly_issued_by(root)
    assert intermediate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    # Every issued chain is the published chain.
    signed = sign_server(ca_adapter, make_csr())
    assert split_pems(signed.chain_pem) == chain
    load_cert(signed.cert_pem).verify_directly_issued_by(intermediate)


@pytest.mark.parametrize(
    ("csr_pem", "check"),
    [
        ("", "present"),
        ("   \n", "present"),
        ("this is not a certificate request", "pem"),
        ("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n", "pem"),
        ("rsa", "key_type"),
        ("p384", "key_type"),
        ("bad-signature", "signature"),
        ("oversize", "size"),
    ],
)
def test_bad_csrs_are_refused_naming_the_check(ca_adapter: CaAdapter, csr_pem: str, check: str) -> None:
    if csr_pem in ("rsa", "p384"):
        csr_pem = make_csr(key_type=csr_pem)
    elif csr_pem == "bad-signature":
        csr_pem = make_bad_signature_csr()
    elif csr_pem == "oversize":
        csr_pem = make_csr() + "\n" + "A" * MAX_CSR_BYTES
    with pytest.raises(InvalidCsrError) as info:
        sign_server(ca_adapter, csr_pem)
    assert info.value.details["check"] == check
    assert info.value.status_code == 400
    assert check in info.value.message


def test_revocation_reaches_the_crl(ca_adapter: CaAdapter) -> None:
    keep = sign_server(ca_adapter, make_csr())
    gone = sign_server(ca_adapter, make_csr())
    when = ca_adapter.revoke(serial=gone.serial)
    assert abs(when - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=5)
    # Revoking again is harmless, and the plain-hex spelling names the same certificate.
    ca_adapter.revoke(serial=gone.serial.replace(":", "").upper())

    crl_pem = ca_adapter.crl_pem()
    crl = x509.load_pem_x509_crl(crl_pem.encode())
    intermediate = split_pems(ca_adapter.ca_chain_pem())[0]
    assert crl.issuer == intermediate.subject
    assert crl.is_signature_valid(intermediate.public_key())
    revoked = {format_serial(r.serial_number) for r in crl}
    assert gone.serial in revoked
    assert keep.serial not in revoked

    refused = openssl_verify(gone.cert_pem, gone.chain_pem, purpose="sslserver", crl_pem=crl_pem)
    assert refused.returncode != 0 and "revoked" in (refused.stdout + refused.stderr)
    kept = openssl_verify(keep.cert_pem, keep.chain_pem, purpose="sslserver", crl_pem=crl_pem)
    assert kept.returncode == 0, kept.stdout + kept.stderr


def test_revoking_an_unknown_serial_is_not_found(ca_adapter: CaAdapter) -> None:
    with pytest.raises(NotFound):
        ca_adapter.revoke(serial="01:02:03:04")


def test_status_reports_a_reachable_ca(ca_adapter: CaAdapter) -> None:
    status = ca_adapter.status()
    assert status.adapter == type(ca_adapter).__name__
    assert status.reachable is True
    assert status.details


NETWORK_A = "0193a1b2-0000-7000-8000-0000000000aa"
NETWORK_B = "0193a1b2-0000-7000-8000-0000000000bb"


def _trusting_only(ca_pem: str, cert_pem: str) -> subprocess.CompletedProcess[str]:
    """``openssl verify`` with ``ca_pem`` as the only trust anchor, as dockerd's tlscacert is."""
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "ca.pem").write_text(ca_pem)
        Path(tmp, "leaf.pem").write_text(cert_pem)
        cmd = ["openssl", "verify", "-partial_chain", "-purpose", "sslclient", "-CAfile", f"{tmp}/ca.pem"]
        return subprocess.run([*cmd, f"{tmp}/leaf.pem"], capture_output=True, text=True, timeout=30)


def test_each_network_has_its_own_client_ca(ca_adapter: CaAdapter) -> None:
    server_chain = ca_adapter.ca_chain_pem()
    ca_a = ca_adapter.client_ca_pem(network_id=NETWORK_A)
    ca_b = ca_adapter.client_ca_pem(network_id=NETWORK_B)
    assert ca_adapter.client_ca_pem(network_id=NETWORK_A.upper()) == ca_a  # made once, then kept
    (cert_a,), (cert_b,) = split_pems(ca_a), split_pems(ca_b)
    root = split_pems(server_chain)[-1]
    for ca, network in ((cert_a, NETWORK_A), (cert_b, NETWORK_B)):
        assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
        assert common_name(ca).endswith(network)
        ca.verify_directly_issued_by(root)  # under the one root
    assert cert_a.public_key() != cert_b.public_key()

    issued_a = ca_adapter.issue_keypair(common_name="operator:alice", ttl=HOUR, network_id=NETWORK_A)
    signed_b = ca_adapter.sign_csr(
        csr_pem=make_csr(), common_name="platform:host-b", ip_sans=[], usage="client", ttl=HOUR, network_id=NETWORK_B
    )
    leaf_a = load_cert(issued_a.cert_pem)
    assert leaf_a.issuer == cert_a.subject and eku(leaf_a) == [CLIENT_AUTH]
    assert split_pems(issued_a.chain_pem) == [cert_a, root]  # the network's client CA, then the root
    ok = openssl_verify(issued_a.cert_pem, issued_a.chain_pem, purpose="sslclient")
    assert ok.returncode == 0, ok.stdout + ok.stderr

    # What a daemon of each network trusts: only its own network's client CA.
    assert _trusting_only(ca_a, issued_a.cert_pem).returncode == 0
    assert _trusting_only(ca_b, signed_b.cert_pem).returncode == 0
    assert _trusting_only(ca_b, issued_a.cert_pem).returncode != 0
    assert _trusting_only(ca_a, signed_b.cert_pem).returncode != 0
    # ...and a certificate from the server intermediate (the old way) opens no network's daemon.
    legacy = ca_adapter.issue_keypair(common_name="platform:host-old", ttl=HOUR)
    assert _trusting_only(ca_a, legacy.cert_pem).returncode != 0

    # The server chain is unchanged: same chain, server certificates still from the intermediate.
    assert ca_adapter.ca_chain_pem() == server_chain
    signed = sign_server(ca_adapter, make_csr())
    assert split_pems(signed.chain_pem) == split_pems(server_chain)
    assert _trusting_only(ca_a, signed.cert_pem).returncode != 0

    # A network's client certificate is revocable like any other.
    assert ca_adapter.revoke(serial=issued_a.serial, cert_pem=issued_a.cert_pem) is not None


def test_network_client_ca_refuses_server_use_and_bad_ids(ca_adapter: CaAdapter) -> None:
    with pytest.raises(ValidationError):
        ca_adapter.sign_csr(
            csr_pem=make_csr(), common_name="host-x", ip_sans=[OVERLAY], usage="server", ttl=HOUR, network_id=NETWORK_A
        )
    with pytest.raises(ValidationError):
        ca_adapter.client_ca_pem(network_id="../../etc")
