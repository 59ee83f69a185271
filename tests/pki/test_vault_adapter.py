"""VaultCaAdapter specifics against a real OpenBao: bootstrap, the platform policy, faults."""

from __future__ import annotations

import datetime as dt
import uuid

import hvac
import hvac.exceptions
import pytest

from apps.pki.adapters.vault import PLATFORM_POLICY, VaultCaAdapter, bootstrap, client_mount_name
from powernode.errors import CaUnavailableError
from tests.csr import make_csr
from tests.openbao import OpenBaoServer, free_port
from tests.pki.helpers import ip_sans, load_cert, openssl_verify

pytestmark = pytest.mark.vault

HOUR = dt.timedelta(hours=1)
OVERLAY = "fd00:abcd:2::7"


def sign(adapter: VaultCaAdapter):
    return adapter.sign_csr(
        csr_pem=make_csr(), common_name="host-v", ip_sans=[OVERLAY], usage="server", ttl=HOUR
    )


def test_bootstrap_is_safe_to_run_twice(openbao: OpenBaoServer) -> None:
    adapter = VaultCaAdapter(openbao.url, openbao.token)
    chain_before = adapter.ca_chain_pem()
    report = bootstrap(url=openbao.url, token=openbao.token)
    assert report["created"] == []
    assert set(report["present"]) >= {
        "mount:pki",
        "mount:pki_int",
        "root:pki",
        "intermediate:pki_int",
        "role:node",
        "role:node-client",
    }
    assert adapter.ca_chain_pem() == chain_before  # the CA was kept, not regenerated
    role = hvac.Client(openbao.url, token=openbao.token).secrets.pki.read_role("node", mount_point="pki_int")[
        "data"
    ]
    assert role["use_csr_common_name"] is False and role["use_csr_sans"] is False
    assert role["key_type"] == "any" and role["server_flag"] is True and role["client_flag"] is False


def test_bootstrap_on_a_fresh_server_then_sign(tmp_path) -> None:
    with OpenBaoServer(tmp_path) as server:
        report = bootstrap(url=server.url, token=server.token, pki_mount="ca_int", root_mount="ca_root")
        assert "intermediate:ca_int" in report["created"]
        adapter = VaultCaAdapter(server.url, server.token, pki_mount="ca_int", root_mount="ca_root")
        assert adapter.status().details["ready"] is True
        signed = sign(adapter)
        assert openssl_verify(signed.cert_pem, signed.chain_pem, purpose="sslserver").returncode == 0


def test_platform_policy_token_signs_but_cannot_sign_verbatim(openbao: OpenBaoServer) -> None:
    root = hvac.Client(openbao.url, token=openbao.token)
    token = root.auth.token.create(policies=[PLATFORM_POLICY], no_default_policy=False, ttl="10m")["auth"][
        "client_token"
    ]
    adapter = VaultCaAdapter(openbao.url, token)
    assert adapter.status().details["ready"] is True  # the policy lets status see mounts and roles
    signed = sign(adapter)
    assert ip_sans(load_cert(signed.cert_pem)) == [OVERLAY]
    adapter.revoke(serial=signed.serial)
    assert "BEGIN X509 CRL" in adapter.crl_pem()
    limited = hvac.Client(openbao.url, token=token)
    with pytest.raises(hvac.exceptions.Forbidden):
        limited.write("pki_int/sign-verbatim/node", csr=make_csr(), common_name="anything")
    with pytest.raises(hvac.exceptions.Forbidden):
        limited.write("pki_int/roles/node", allow_any_name=True, use_csr_sans=True)


def test_bad_token_is_ca_unavailable(openbao: OpenBaoServer) -> None:
    adapter = VaultCaAdapter(openbao.url, "not-a-token")
    with pytest.raises(CaUnavailableError) as info:
        sign(adapter)
    assert info.value.status_code == 502
    status = adapter.status()
    assert status.reachable is True  # Vault answers...
    assert status.details["token_valid"] is False and status.details["ready"] is False  # ...but not to us
    assert "token" in status.details["error"]


def test_nothing_listening_is_ca_unavailable_and_status_does_not_raise() -> None:
    adapter = VaultCaAdapter(f"http://127.0.0.1:{free_port()}", "token", timeout=2)
    with pytest.raises(CaUnavailableError):
        sign(adapter)
    status = adapter.status()
    assert status.adapter == "VaultCaAdapter" and status.reachable is False
    assert status.details["error"]


def test_openbao_stopped_mid_test_then_restarted(openbao_persistent: OpenBaoServer) -> None:
    server = openbao_persistent
    adapter = VaultCaAdapter(server.url, server.token, timeout=5)
    before = sign(adapter)
    chain = adapter.ca_chain_pem()

    server.stop()
    try:
        for call in (
            lambda: sign(adapter),
            lambda: adapter.issue_keypair(common_name="platform:host-v", ttl=HOUR),
            lambda: adapter.revoke(serial=before.serial),
            adapter.crl_pem,
            adapter.ca_chain_pem,
        ):
            with pytest.raises(CaUnavailableError) as info:
                call()
            assert info.value.status_code == 502
        status = adapter.status()
        assert status.reachable is False
    finally:
        server.start()

    # Same adapter object, same CA after the restart: signing and revocation work again.
    after = sign(adapter)
    assert adapter.ca_chain_pem() == chain
    assert openssl_verify(after.cert_pem, chain, purpose="sslserver").returncode == 0
    adapter.revoke(serial=before.serial)
    assert adapter.status().reachable is True


def test_sealed_openbao_is_unreachable_in_status(openbao_persistent: OpenBaoServer) -> None:
    server = openbao_persistent
    client = hvac.Client(server.url, token=server.token)
    client.sys.seal()
    try:
        adapter = VaultCaAdapter(server.url, server.token)
        assert adapter.status().reachable is False
        with pytest.raises(CaUnavailableError):
            sign(adapter)
    finally:
        server.restart()  # start() unseals
    assert sign(VaultCaAdapter(server.url, server.token)).serial


def test_platform_policy_token_makes_a_networks_client_ca_on_first_use(openbao: OpenBaoServer) -> None:
    """A network created after bootstrap: the platform's own token makes its client CA mount on the first
    client certificate, signs there, revokes there, and still cannot sign-verbatim or widen the role."""
    network = str(uuid.uuid4())
    root = hvac.Client(openbao.url, token=openbao.token)
    token = root.auth.token.create(policies=[PLATFORM_POLICY], no_default_policy=False, ttl="10m")["auth"][
        "client_token"
    ]
    adapter = VaultCaAdapter(openbao.url, token)
    issued = adapter.issue_keypair(common_name="operator:alice", ttl=HOUR, network_id=network)
    client_ca = load_cert(adapter.client_ca_pem(network_id=network))
    assert load_cert(issued.cert_pem).issuer == client_ca.subject
    assert openssl_verify(issued.cert_pem, issued.chain_pem, purpose="sslclient").returncode == 0
    adapter.revoke(serial=issued.serial, cert_pem=issued.cert_pem)
    mount = client_mount_name(network)
    record = root.read(f"{mount}/cert/{issued.serial}")["data"]
    assert record["revocation_time"] > 0  # revoked on the network's own mount
    # a second adapter (another process) finds the CA made, and keeps it
    assert VaultCaAdapter(openbao.url, token).client_ca_pem(network_id=network) == adapter.client_ca_pem(
        network_id=network
    )
    limited = hvac.Client(openbao.url, token=token)
    with pytest.raises(hvac.exceptions.Forbidden):
        limited.write(f"{mount}/sign-verbatim/node-client", csr=make_csr(), common_name="anything")
    with pytest.raises(hvac.exceptions.Forbidden):
        limited.write(f"{mount}/issue/node-client", common_name="anything")
    with pytest.raises(hvac.exceptions.Forbidden):
        limited.write("pki_int/roles/node", allow_any_name=True, use_csr_sans=True)


def test_bootstrap_makes_client_cas_for_the_networks_it_is_given(openbao: OpenBaoServer) -> None:
    network = str(uuid.uuid4())
    report = bootstrap(url=openbao.url, token=openbao.token, network_ids=(network,))
    assert f"client_ca:{client_mount_name(network)}" in report["created"]
    again = bootstrap(url=openbao.url, token=openbao.token, network_ids=(network,))
    assert f"client_ca:{client_mount_name(network)}" in again["present"]
