"""Fixtures for the agent's tests (the doubles themselves live in pnagent_fakes.py)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# The tests import pnagent_fakes / pnagent_netns beside this file, whatever pytest's import mode; and the
# package itself works from the checkout even where `pip install -e agent` was not run.
sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(1, str(Path(__file__).parent.parent))

from pnagent_fakes import (  # noqa: E402
    FakeDockerRuntime,
    FakePlatform,
    SimulatedCrash,
    TestCa,
    require_root_tools,
)

from powernode_agent.config import AgentConfig  # noqa: E402
from powernode_agent.state import StateStore  # noqa: E402


@pytest.fixture(scope="session")
def test_ca() -> TestCa:
    return TestCa()


@pytest.fixture
def fake_platform(test_ca: TestCa) -> Iterator[FakePlatform]:
    platform = FakePlatform(test_ca)
    platform.thread.start()
    try:
        yield platform
    finally:
        platform.server.shutdown()
        platform.server.server_close()


@pytest.fixture
def agent_config(tmp_path: Path, fake_platform: FakePlatform) -> AgentConfig:
    return AgentConfig(
        platform_url=fake_platform.url,
        agent_token=fake_platform.token,
        state_dir=tmp_path / "state",
        docker_tls_dir=tmp_path / "etc-docker" / "powernode",
        daemon_json_path=tmp_path / "etc-docker" / "daemon.json",
        systemd_dropin_path=tmp_path / "systemd" / "powernode.conf",
        daemon_json_extras={"data-root": str(tmp_path / "data"), "bip": "198.18.7.1/24"},
        dockerd_launch="child",
        ready_timeout_s=5,
    )


@pytest.fixture
def fake_runtime(agent_config: AgentConfig) -> FakeDockerRuntime:
    return FakeDockerRuntime(agent_config, StateStore(agent_config.state_dir))


@pytest.fixture
def crash_type() -> type[BaseException]:
    return SimulatedCrash


@pytest.fixture
def root_tools():  # noqa: ANN201 - returns require_root_tools
    return require_root_tools
