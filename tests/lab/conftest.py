"""The lab world for the `lab` tests: built once per session, torn down (and checked clean) at the end.

These tests stay free of Django so they run before the platform exists; see tests/lab/README.md.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from lab.netns import in_netns
from lab.proc import why_lab_cannot_run
from lab.teardown import down, stale_prefixes
from lab.topology import Lab
from lab.world import World, build_world
from tests.needs import need

SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


def pytest_configure(config: pytest.Config) -> None:
    # The root config declares `lab`; this keeps `pytest tests/lab --confcutdir=tests/lab` working too.
    config.addinivalue_line("markers", "lab: needs root, network namespaces, wireguard-go and dockerd (the lab)")


def fresh_prefix() -> str:
    """A prefix no other lab on the machine uses ("pnl" + 3 hex + "-": 7 of the 15 interface bytes)."""
    return f"pnl{secrets.token_hex(2)[:3]}-"


TEST_PREFIX_PATTERN = r"pnl[0-9a-f]{3}-"


@pytest.fixture(scope="session")
def lab_possible() -> None:
    reason = why_lab_cannot_run()
    need(reason is None, reason or "")
    # Labs of earlier runs that were killed outright (their owner process is gone).
    for prefix in stale_prefixes(TEST_PREFIX_PATTERN):
        down(prefix)


@pytest.fixture(scope="session")
def world(lab_possible: None) -> Iterator[World]:
    lab = Lab(fresh_prefix())
    lab.up()
    try:
        yield build_world(lab)
    finally:
        left = lab.close()
    assert left == {}, f"the lab left things behind: {left}"


@pytest.fixture
def in_platform(world: World) -> Iterator[None]:
    """Run the test body in the platform's namespace, where the server will reach overlays via the hub."""
    with in_netns(world.lab.platform.name):
        yield


@pytest.fixture
def ca_bundle_env(monkeypatch: pytest.MonkeyPatch) -> str:
    """The variables that make docker-py ignore a host's CA (docker/docker-py#2433), set as on our machines."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", SYSTEM_CA_BUNDLE)
    monkeypatch.setenv("CURL_CA_BUNDLE", SYSTEM_CA_BUNDLE)
    return SYSTEM_CA_BUNDLE
