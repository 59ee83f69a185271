"""Service-level faults against a real OpenBao: Vault stopped mid-request, KV write failing after commit."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction

from apps.docker_hosts.models import DockerHost
from apps.docker_hosts.selectors import host_client_tls
from apps.docker_hosts.services import kv_path_for_host
from apps.events.models import Event
from apps.events.services import event_record
from apps.pki import services
from apps.pki.kv import VaultKvAdapter, kv_write_after_commit, vault_sync_pending
from apps.pki.models import IssuedCertificate, VaultKvOutbox
from powernode import secretbox
from powernode.errors import CaUnavailableError
from tests.csr import make_csr
from tests.openbao import OpenBaoServer, point_settings_at

pytestmark = [pytest.mark.vault, pytest.mark.django_db]

HOST = "host-0193a1b2-0000-7000-8000-00000000fa17"
OVERLAY = "fd00:abcd:1::99"


@pytest.fixture
def vault(settings, openbao_persistent: OpenBaoServer):  # noqa: ANN001, ANN201
    point_settings_at(settings, openbao_persistent)
    yield openbao_persistent
    if not openbao_persistent.running:  # a test that failed half-way must not leave it down
        openbao_persistent.start()


def kv(server: OpenBaoServer) -> VaultKvAdapter:
    return VaultKvAdapter(server.url, server.token, mount="secret")


def test_vault_down_while_signing_writes_nothing(vault: OpenBaoServer) -> None:
    vault.stop()
    # Like the handshake: the host's own change and the signature share one transaction.
    with pytest.raises(CaUnavailableError) as info:
        with transaction.atomic():
            event_record(kind="system.docker.handshake.wants_cert", host_id=HOST)
            services.ca_sign_host_csr(csr_pem=make_csr(), host_id=HOST, overlay_address=OVERLAY)
    assert info.value.status_code == 502
    assert not IssuedCertificate.objects.exists()
    assert not Event.objects.exists()
    assert services.ca_status()["vault"]["reachable"] is False

    vault.start()
    signed = services.ca_sign_host_csr(csr_pem=make_csr(), host_id=HOST, overlay_address=OVERLAY)
    assert IssuedCertificate.objects.filter(
        serial=signed.certificate.serial, adapter="VaultCaAdapter"
    ).exists()


def test_provisioning_status_answers_200_while_vault_is_down(vault: OpenBaoServer, api) -> None:  # noqa: ANN001
    vault.stop()
    try:
        body = api.ok("platform_provisioning_status")
    finally:
        vault.start()
    assert body["ca_adapter"] == "VaultCaAdapter"
    assert body["vault"]["configured"] is True and body["vault"]["reachable"] is False
    assert body["vault"]["error"]


def test_kv_write_fails_after_commit_then_vault_sync_lands_it(
    vault: OpenBaoServer, agent, django_capture_on_commit_callbacks
) -> None:  # noqa: ANN001
    """The platform's client keypair for a host, as the handshake issues it at ``wants_cert``: mirrored on the
    row in the handshake's transaction, sent to Vault KV after commit. Vault is gone by then: the outbox
    keeps the write (encrypted) until ``vault_sync`` lands it, and the row serves reads meanwhile."""
    agent.ok("installing")
    with django_capture_on_commit_callbacks() as after_commit:  # the handshake commits; the KV send waits
        answer = agent.ok("wants_cert", csr_pem=make_csr())
    host = DockerHost.objects.get(pk=answer["host_id"])
    client_cert = IssuedCertificate.objects.get(host_id=host.id, kind=IssuedCertificate.Kind.PLATFORM_CLIENT)
    assert client_cert.adapter == "VaultCaAdapter" and client_cert.serial == host.client_cert_serial
    key_pem = secretbox.decrypt(host.client_key_encrypted)
    vault.stop()  # Vault goes away between the commit and the after-commit KV write
    try:
        for callback in after_commit:
            callback()
        row = VaultKvOutbox.objects.get(path=kv_path_for_host(host.id))
        assert row.status == VaultKvOutbox.Status.PENDING
        assert row.attempts == 1 and row.last_error
        assert key_pem not in row.payload_encrypted  # encrypted at rest
        # The DB mirror serves reads while Vault is down.
        assert host_client_tls(host=DockerHost.objects.get(pk=host.pk)) == {
            "cert_pem": host.client_cert_pem,
            "key_pem": key_pem,
            "ca_pem": host.client_chain_pem,
        }
        with pytest.raises(CommandError):
            call_command("vault_sync", stdout=io.StringIO())
        row.refresh_from_db()
        assert row.status == VaultKvOutbox.Status.PENDING and row.attempts == 2
    finally:
        vault.start()

    call_command("vault_sync", stdout=io.StringIO())
    row.refresh_from_db()
    assert row.status == VaultKvOutbox.Status.DONE and row.done_at is not None
    assert row.payload_encrypted == ""  # no second copy once Vault has it
    stored = kv(vault).read(kv_path_for_host(host.id))
    assert stored.pop("client_ca_pem") in host.client_cert_pem  # the leaf is presented with its client CA
    assert stored == {
        "host_id": host.id,
        "network_id": str(host.network_id),
        "serial": host.client_cert_serial,
        "cert_pem": host.client_cert_pem,
        "key_pem": key_pem,
        "chain_pem": host.client_chain_pem,
    }


def test_next_write_first_retries_pending_ones_in_order(
    vault: OpenBaoServer, django_capture_on_commit_callbacks
) -> None:  # noqa: ANN001
    vault.stop()
    try:
        with django_capture_on_commit_callbacks(execute=True):
            with transaction.atomic():
                kv_write_after_commit(path="powernode/test/order", data={"v": "1"})
        assert VaultKvOutbox.objects.get().status == VaultKvOutbox.Status.PENDING
    finally:
        vault.start()
    with django_capture_on_commit_callbacks(execute=True):
        with transaction.atomic():
            kv_write_after_commit(path="powernode/test/order", data={"v": "2"})
    assert list(VaultKvOutbox.objects.values_list("status", flat=True)) == ["done", "done"]
    # Oldest first: the later value is the one Vault keeps.
    assert kv(vault).read("powernode/test/order") == {"v": "2"}


def test_rolled_back_transaction_sends_nothing(
    vault: OpenBaoServer, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError):
            with transaction.atomic():
                kv_write_after_commit(path="powernode/test/rolled-back", data={"v": "x"})
                raise RuntimeError("the caller's change failed")
    assert callbacks == []
    assert not VaultKvOutbox.objects.exists()
    assert kv(vault).read("powernode/test/rolled-back") is None


def test_without_vault_kv_writes_are_recorded_as_skipped(
    settings, django_capture_on_commit_callbacks
) -> None:  # noqa: ANN001
    settings.VAULT_ADDR = ""
    settings.VAULT_TOKEN = ""
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with transaction.atomic():
            row = kv_write_after_commit(path="powernode/test/none", data={"v": "x"})
    assert callbacks == []
    row.refresh_from_db()
    assert row.status == VaultKvOutbox.Status.SKIPPED and row.payload_encrypted == ""
    assert vault_sync_pending().written == 0
