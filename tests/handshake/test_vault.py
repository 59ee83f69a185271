"""The handshake against a real OpenBao: certificates from pki_int, the client keypair in Vault KV."""

from __future__ import annotations

import pytest

from apps.docker_hosts.models import DockerHost
from apps.docker_hosts.services import kv_path_for_host
from apps.pki.kv import get_kv_adapter
from apps.pki.models import IssuedCertificate, VaultKvOutbox
from powernode import secretbox
from tests.openbao import point_settings_at

# after-commit KV writes only run when the transaction really commits
pytestmark = [pytest.mark.vault, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def vault(settings, openbao):  # noqa: ANN001, ANN201
    point_settings_at(settings, openbao)
    return openbao


def test_handshake_with_vault_mirrors_the_keypair_in_kv_and_destroys_it(vault, api, docker_fleet, agent):
    agent.walk_to_ready()
    host = DockerHost.objects.get()
    assert set(IssuedCertificate.objects.filter(host_id=host.id).values_list("adapter", flat=True)) == {
        "VaultCaAdapter"
    }
    kv = get_kv_adapter()
    stored = kv.read(kv_path_for_host(host.id))
    assert stored["key_pem"] == secretbox.decrypt(host.client_key_encrypted)
    assert stored["cert_pem"] == host.client_cert_pem
    assert not VaultKvOutbox.objects.filter(status=VaultKvOutbox.Status.PENDING).exists()

    api.ok("system_decommission_docker_runtime", {"host_id": host.id})
    agent.ok("decommissioned", host_id=host.id)
    # every version is gone, not only superseded: the metadata itself no longer exists
    assert kv.read(kv_path_for_host(host.id)) is None
    import hvac.exceptions

    with pytest.raises(hvac.exceptions.InvalidPath):
        kv.client.secrets.kv.v2.read_secret_metadata(path=kv_path_for_host(host.id), mount_point="secret")
    destroy = VaultKvOutbox.objects.get(path=kv_path_for_host(host.id), operation="destroy")
    assert destroy.status == VaultKvOutbox.Status.DONE
    assert not IssuedCertificate.objects.filter(host_id=host.id, revoked_at__isnull=True).exists()
