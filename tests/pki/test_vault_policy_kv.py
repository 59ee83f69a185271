"""Issue 11 item 4: with the least-privilege ``powernode-platform`` token (not root), a decommission
destroys the host's keypair in Vault KV (every version and the metadata) and the outbox row is done."""

from __future__ import annotations

import hvac
import hvac.exceptions
import pytest

from apps.docker_hosts.models import DockerHost
from apps.docker_hosts.services import kv_path_for_host
from apps.pki.adapters.vault import PLATFORM_POLICY
from apps.pki.kv import VaultKvAdapter, vault_sync_pending
from apps.pki.models import VaultKvOutbox
from tests.openbao import OpenBaoServer, point_settings_at

pytestmark = pytest.mark.vault


@pytest.fixture
def policy_token(settings, openbao: OpenBaoServer) -> str:  # noqa: ANN001 - pytest-django settings
    """The platform runs with a token holding only the bootstrap's policy, as the runbook says."""
    root = hvac.Client(openbao.url, token=openbao.token)
    token = root.auth.token.create(policies=[PLATFORM_POLICY], ttl="10m")["auth"]["client_token"]
    point_settings_at(settings, openbao)
    settings.VAULT_TOKEN = token
    return token


def test_decommission_destroys_the_kv_secret_with_the_platform_policy_token(
    api, docker_fleet, agent, openbao: OpenBaoServer, policy_token: str
):
    agent.walk_to_ready()
    host = DockerHost.objects.get()
    path = kv_path_for_host(host.id)
    assert vault_sync_pending().pending == 0  # the keypair write landed (the production path: vault_sync)
    root_kv = VaultKvAdapter(openbao.url, openbao.token, mount="secret")
    assert root_kv.read(path) is not None

    api.ok("system_decommission_docker_runtime", {"host_id": host.id})
    agent.ok("decommissioned", host_id=host.id)
    report = vault_sync_pending()
    destroy = VaultKvOutbox.objects.get(path=path, operation=VaultKvOutbox.Operation.DESTROY)
    assert (report.failed, report.pending, report.last_error) == (0, 0, "")
    assert destroy.status == VaultKvOutbox.Status.DONE and destroy.last_error == ""

    assert root_kv.read(path) is None
    with pytest.raises(hvac.exceptions.InvalidPath):  # no old version kept either: the metadata is gone
        hvac.Client(openbao.url, token=openbao.token).secrets.kv.v2.read_secret_metadata(
            path=path, mount_point="secret"
        )


def test_the_policy_token_cannot_touch_kv_outside_powernode(openbao: OpenBaoServer, policy_token: str):
    limited = hvac.Client(openbao.url, token=policy_token)
    for call in (
        lambda: limited.secrets.kv.v2.create_or_update_secret(path="other/x", secret={"a": "b"}, mount_point="secret"),
        lambda: limited.secrets.kv.v2.delete_metadata_and_all_versions(path="other/x", mount_point="secret"),
    ):
        with pytest.raises(hvac.exceptions.Forbidden):
            call()
