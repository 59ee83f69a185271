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
