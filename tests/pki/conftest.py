"""Fixtures for the PKI tests: a local CA, a real OpenBao (bootstrapped) and both adapters in one fixture."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from apps.pki.adapters.base import CaAdapter
from apps.pki.adapters.local import LocalCaAdapter, init_local_ca
from apps.pki.adapters.vault import VaultCaAdapter, bootstrap
from apps.pki.openbao_dev import OpenBaoServer


@pytest.fixture(scope="session")
def openbao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenBaoServer]:
    """``bao server -dev`` on a free loopback port, bootstrapped with pki, pki_int and the node roles."""
    server = OpenBaoServer(tmp_path_factory.mktemp("openbao-dev")).start()
    try:
        bootstrap(url=server.url, token=server.token)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def openbao_persistent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenBaoServer]:
    """An OpenBao with raft storage, so a stop/restart keeps its PKI (for the fault tests)."""
    server = OpenBaoServer(tmp_path_factory.mktemp("openbao-raft"), persistent=True).start()
    try:
        bootstrap(url=server.url, token=server.token)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def local_ca_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ca_dir = tmp_path_factory.mktemp("local-ca") / "pki"
    init_local_ca(ca_dir)
    return ca_dir


@pytest.fixture(params=["local", pytest.param("vault", marks=pytest.mark.vault)])
def ca_adapter(request: pytest.FixtureRequest) -> CaAdapter:
    """Each contract test runs once per adapter."""
    if request.param == "local":
        return LocalCaAdapter(request.getfixturevalue("local_ca_dir"))
    server: OpenBaoServer = request.getfixturevalue("openbao")
    return VaultCaAdapter(server.url, server.token)


@pytest.fixture
def local_ca_settings(settings, tmp_path: Path) -> Path:
    """Django settings pointing the services at a fresh local CA (and no Vault)."""
    settings.VAULT_ADDR = ""
    settings.VAULT_TOKEN = ""
    settings.PKI_LOCAL_CA_DIR = tmp_path / "pki"
    init_local_ca(settings.PKI_LOCAL_CA_DIR)
    return settings.PKI_LOCAL_CA_DIR


def point_settings_at(settings, server: OpenBaoServer) -> None:  # noqa: ANN001 - pytest-django settings
    settings.VAULT_ADDR = server.url
    settings.VAULT_TOKEN = server.token
    settings.VAULT_PKI_MOUNT = "pki_int"
    settings.VAULT_PKI_ROLE = "node"
    settings.VAULT_KV_MOUNT = "secret"
    settings.VAULT_TIMEOUT = 5.0


@pytest.fixture(params=["local", pytest.param("vault", marks=pytest.mark.vault)])
def ca_backend(request: pytest.FixtureRequest, settings) -> str:  # noqa: ANN001
    """Services configured for each adapter in turn; returns the expected adapter name."""
    if request.param == "local":
        request.getfixturevalue("local_ca_settings")
        return "LocalCaAdapter"
    point_settings_at(settings, request.getfixturevalue("openbao"))
    return "VaultCaAdapter"
