"""PKI fixtures on top of the root ones: both adapters in one fixture, and an OpenBao that survives a restart."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from apps.pki.adapters.base import CaAdapter
from apps.pki.adapters.local import LocalCaAdapter
from apps.pki.adapters.vault import VaultCaAdapter
from tests.openbao import OpenBaoServer, bootstrapped_openbao


@pytest.fixture(scope="module")
def openbao_persistent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenBaoServer]:
    """An OpenBao with raft storage, so a stop/restart keeps its PKI (the fault tests stop, seal and restart it;
    the run's shared ``openbao`` must never go down under other tests)."""
    with bootstrapped_openbao(tmp_path_factory.mktemp("openbao-raft"), persistent=True) as server:
        yield server


@pytest.fixture(params=["local", pytest.param("vault", marks=pytest.mark.vault)])
def ca_adapter(request: pytest.FixtureRequest, local_ca_dir: Path) -> CaAdapter:
    """Each contract test runs once per adapter."""
    if request.param == "local":
        return LocalCaAdapter(local_ca_dir)
    server: OpenBaoServer = request.getfixturevalue("openbao")
    return VaultCaAdapter(server.url, server.token)
