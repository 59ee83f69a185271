"""The PKI management commands: pki_init_local_ca, pki_bootstrap_vault, vault_sync."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from tests.openbao import OpenBaoServer


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_pki_init_local_ca_keeps_an_existing_ca_unless_forced(settings, tmp_path: Path) -> None:  # noqa: ANN001
    settings.PKI_LOCAL_CA_DIR = tmp_path / "pki"
    assert "created" in run("pki_init_local_ca")
    root = (tmp_path / "pki" / "root.pem").read_bytes()
    assert "kept" in run("pki_init_local_ca")  # idempotent: powernode_setup calls it every time
    assert (tmp_path / "pki" / "root.pem").read_bytes() == root
    assert "replaced" in run("pki_init_local_ca", "--force")
    assert (tmp_path / "pki" / "root.pem").read_bytes() != root


@pytest.mark.vault
@pytest.mark.django_db
def test_pki_bootstrap_vault_twice(settings, tmp_path: Path) -> None:  # noqa: ANN001
    from apps.pki.adapters.vault import client_mount_name
    from tests.factories import SdwanNetworkFactory

    network = SdwanNetworkFactory()
    with OpenBaoServer(tmp_path / "bao") as server:
        settings.VAULT_ADDR, settings.VAULT_TOKEN = server.url, server.token
        first = run("pki_bootstrap_vault")
        assert "created  intermediate:pki_int" in first and "created  role:node" in first
        # the client CA of every existing network
        assert f"created  client_ca:{client_mount_name(str(network.pk))}" in first
        second = run("pki_bootstrap_vault")
        assert "created  " not in second  # nothing new on the second run
        assert "present  intermediate:pki_int" in second and "present  role:node-client" in second
        assert f"present  client_ca:{client_mount_name(str(network.pk))}" in second


def test_pki_bootstrap_vault_without_settings_is_a_clear_error(settings) -> None:  # noqa: ANN001
    settings.VAULT_ADDR = settings.VAULT_TOKEN = ""
    with pytest.raises(CommandError, match="VAULT_ADDR"):
        run("pki_bootstrap_vault")


@pytest.mark.django_db
def test_vault_sync_without_vault_says_so(settings) -> None:  # noqa: ANN001
    settings.VAULT_ADDR = settings.VAULT_TOKEN = ""
    assert "not configured" in run("vault_sync")
