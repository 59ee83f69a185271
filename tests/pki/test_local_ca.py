"""LocalCaAdapter specifics: init refuses to overwrite, rotation, a missing CA, state files."""

from __future__ import annotations

import datetime as dt
import stat
from pathlib import Path

import pytest
from cryptography import x509

from apps.pki.adapters.base import format_serial
from apps.pki.adapters.local import LocalCaAdapter, init_local_ca
from powernode.errors import CaUnavailableError, ConflictError, NotFound
from tests.csr import make_csr
from tests.pki.helpers import openssl_verify, split_pems

HOUR = dt.timedelta(hours=1)


def test_init_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    ca_dir = tmp_path / "pki"
    first = init_local_ca(ca_dir)
    before = (ca_dir / "root.pem").read_bytes()
    with pytest.raises(ConflictError) as info:
        init_local_ca(ca_dir)
    assert "force" in info.value.message
    assert (ca_dir / "root.pem").read_bytes() == before
    assert first["root_subject"] == "CN=powernode local root CA"
    # Private keys are readable by the owner only.
    for name in ("root.key.pem", "intermediate.key.pem"):
        assert stat.S_IMODE((ca_dir / name).stat().st_mode) == 0o600
    assert stat.S_IMODE(ca_dir.stat().st_mode) == 0o700


def test_rotation_with_force_replaces_the_chain_and_its_state(tmp_path: Path) -> None:
    ca_dir = tmp_path / "pki"
    init_local_ca(ca_dir)
    adapter = LocalCaAdapter(ca_dir)
    old = adapter.sign_csr(
        csr_pem=make_csr(), common_name="host-a", ip_sans=["fd00::1"], usage="server", ttl=HOUR
    )
    adapter.revoke(serial=old.serial)
    old_chain = adapter.ca_chain_pem()

    init_local_ca(ca_dir, force=True)
    new_chain = adapter.ca_chain_pem()  # the same adapter object notices the new files
    assert split_pems(new_chain)[1] != split_pems(old_chain)[1]
    assert openssl_verify(old.cert_pem, new_chain, purpose="sslserver").returncode != 0
    assert not (ca_dir / "revoked.json").exists()
    new = adapter.sign_csr(
        csr_pem=make_csr(), common_name="host-a", ip_sans=["fd00::1"], usage="server", ttl=HOUR
    )
    assert openssl_verify(new.cert_pem, new_chain, purpose="sslserver").returncode == 0


def test_missing_ca_is_unavailable_and_status_says_so(tmp_path: Path) -> None:
    adapter = LocalCaAdapter(tmp_path / "nothing-here")
    with pytest.raises(CaUnavailableError) as info:
        adapter.sign_csr(
            csr_pem=make_csr(), common_name="host-a", ip_sans=["fd00::1"], usage="server", ttl=HOUR
        )
    assert "pki_init_local_ca" in info.value.message
    assert info.value.status_code == 502
    status = adapter.status()
    assert status.reachable is False
    assert "pki_init_local_ca" in status.details["error"]


def test_revocations_persist_across_adapter_instances(tmp_path: Path) -> None:
    ca_dir = tmp_path / "pki"
    init_local_ca(ca_dir)
    issued = LocalCaAdapter(ca_dir).issue_keypair(common_name="operator:bob", ttl=HOUR)
    LocalCaAdapter(ca_dir).revoke(serial=issued.serial)
    assert issued.serial in LocalCaAdapter(ca_dir).revoked_serials()
    # No temp files left behind by the atomic writes.
    assert not [p for p in ca_dir.iterdir() if p.name.startswith(".revoked")]


def test_lost_issued_copy_is_made_up_for_by_the_certificate(tmp_path: Path) -> None:
    ca_dir = tmp_path / "pki"
    init_local_ca(ca_dir)
    adapter = LocalCaAdapter(ca_dir)
    issued = adapter.issue_keypair(common_name="platform:host-crash", ttl=HOUR)
    log = ca_dir / "issued.log"
    lines = log.read_text().splitlines(keepends=True)
    log.write_text("".join(x for x in lines if not x.startswith(issued.serial)))  # as if lost in a crash

    with pytest.raises(NotFound):
        adapter.revoke(serial=issued.serial)
    init_local_ca(tmp_path / "other")
    foreign = LocalCaAdapter(tmp_path / "other").issue_keypair(common_name="x", ttl=HOUR)
    with pytest.raises(NotFound):  # a certificate from another CA proves nothing
        adapter.revoke(serial=foreign.serial, cert_pem=foreign.cert_pem)
    with pytest.raises(NotFound):  # nor does our certificate offered for another serial
        adapter.revoke(serial=foreign.serial, cert_pem=issued.cert_pem)

    adapter.revoke(serial=issued.serial, cert_pem=issued.cert_pem)
    crl = x509.load_pem_x509_crl(adapter.crl_pem().encode())
    assert issued.serial in {format_serial(r.serial_number) for r in crl}


NETWORK = "0193a1b2-0000-7000-8000-0000000000aa"


def test_a_networks_client_ca_lives_in_its_own_directory_and_is_never_overwritten(tmp_path: Path) -> None:
    ca_dir = tmp_path / "pki"
    init_local_ca(ca_dir)
    adapter = LocalCaAdapter(ca_dir)
    pem = adapter.client_ca_pem(network_id=NETWORK)
    directory = ca_dir / "clients" / NETWORK
    assert (directory / "ca.pem").read_text() == pem
    assert stat.S_IMODE((directory / "ca.key.pem").stat().st_mode) == 0o600
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    # Another process (a fresh adapter) uses the same CA: it is made once.
    assert LocalCaAdapter(ca_dir).client_ca_pem(network_id=NETWORK) == pem
    issued = LocalCaAdapter(ca_dir).issue_keypair(common_name="operator:bob", ttl=HOUR, network_id=NETWORK)
    # A revocation in another process finds the serial (issued.log or the client CA's signature).
    assert adapter.revoke(serial=issued.serial, cert_pem=issued.cert_pem)

    # A key left without its certificate is not replaced by a new CA.
    other = "0193a1b2-0000-7000-8000-0000000000bb"
    (ca_dir / "clients" / other).mkdir(mode=0o700)
    (ca_dir / "clients" / other / "ca.key.pem").write_text("half made")
    with pytest.raises(CaUnavailableError):
        adapter.client_ca_pem(network_id=other)
    assert (ca_dir / "clients" / other / "ca.key.pem").read_text() == "half made"

    # Rotating the local CA drops the client CAs signed by the old root; they are made again on use.
    init_local_ca(ca_dir, force=True)
    assert not (ca_dir / "clients").exists()
    assert adapter.client_ca_pem(network_id=NETWORK) != pem
