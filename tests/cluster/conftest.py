"""The cluster of the `cluster` tests: three platform processes on one PostgreSQL database and one OpenBao,
behind HAProxy (tests/cluster/harness.py), built once per run (the tests of this directory share it) and
torn down even when a test fails."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.cluster.harness import Cluster, running_cluster, why_cluster_cannot_run
from tests.needs import need

AGENTS = 300


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    reason = why_cluster_cannot_run()
    need(reason is None, reason or "")
    work = tmp_path_factory.mktemp("cluster")
    with running_cluster(work, processes=3, agents=AGENTS, database=f"powernode_cluster_test_{os.getpid()}") as c:
        yield c
