"""The heartbeat loop against the fake platform: interval, reports, SDWAN reconcile, orders; and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from powernode_agent import state as st
from powernode_agent.cli import main
from powernode_agent.runner import Runner, backoff_s
from powernode_agent.wireguard import Membership, interface_name

OVERLAY = "fd00:abcd:1::2"


class RecordingWireGuard:
    """Stands in for WireGuardManager in loop tests (the real one has its own namespace test)."""

    def __init__(self) -> None:
        self.up: list[Membership] = []
        self.down: list[str] = []

    def bring_up(self, membership: Membership, *, private_key_file) -> None:
        assert private_key_file.exists()
        self.up.append(membership)

    def tear_down(self, ifname: str) -> bool:
        self.down.append(ifname)
        return True


def _sdwan(network_id: str = "5f0c1e2a-0000-4000-8000-000000000001") -> dict:
    return {
        "network_id": network_id,
        "network_name": "lab-a",
        "peer_id": "p1",
        "prefix": "fd00:abcd:1::/64",
        "overlay_address": OVERLAY,
        "hub": {
            "public_key": "HUBKEY" + "A" * 38 + "=",
            "endpoint": "[fd00:ffff::1]:51820",
            "overlay_address": "fd00:abcd:1::1",
        },
    }


@pytest.fixture
def runner_factory(agent_config, fake_runtime):
    def make(sleeps: list | None = None) -> tuple[Runner, RecordingWireGuard]:
        wg = RecordingWireGuard()
        runner = Runner(
            agent_config,
            store=fake_runtime.store,
            runtime=fake_runtime,
            wireguard=wg,
            sleep=(sleeps.append if sleeps is not None else lambda s: None),
        )
        return runner, wg

    return make


def test_loop_sleeps_the_interval_the_platform_answers(fake_platform, runner_factory) -> None:
    fake_platform.heartbeat_answers = [
        {"heartbeat_interval_s": 7},
        {"heartbeat_interval_s": 3},
        {"heartbeat_interval_s": 3},
    ]
    sleeps: list[float] = []
    runner, _ = runner_factory(sleeps)
    runner.run(max_ticks=3)
    assert len(fake_platform.heartbeats()) == 3
    assert sleeps == [7, 3]  # no sleep after the last tick


def test_interval_override_wins(fake_platform, runner_factory, agent_config) -> None:
    agent_config.heartbeat_interval_s = 1
    fake_platform.heartbeat_interval_s = 60
    sleeps: list[float] = []
    runner, _ = runner_factory(sleeps)
    runner.run(max_ticks=3)
    assert sleeps == [1, 1]


def test_unreachable_platform_backs_off_with_full_jitter_and_reports(fake_platform, runner_factory) -> None:
    fake_platform.heartbeat_interval_s = 45
    runner, _ = runner_factory()
    assert runner.tick() == 45
    fake_platform.server.shutdown()
    fake_platform.server.server_close()
    waits = [runner.tick() for _ in range(8)]
    assert runner.errors and "heartbeat" in runner.errors[0]
    ceilings = [1, 2, 4, 8, 16, 32, 45, 45]  # base 1 s doubling, capped by the interval
    assert all(0 <= w <= c for w, c in zip(waits, ceilings, strict=True)), waits


def test_backoff_is_full_jitter_between_zero_and_a_doubling_capped_ceiling() -> None:
    top = [backoff_s(n, cap_s=60, rand=lambda lo, hi: hi) for n in range(1, 10)]
    assert top == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    assert [backoff_s(n, cap_s=60, rand=lambda lo, hi: lo) for n in (1, 5, 9)] == [0, 0, 0]
    assert backoff_s(20, cap_s=300, rand=lambda lo, hi: hi) == 60  # never above 60 s
    assert backoff_s(20, cap_s=5, rand=lambda lo, hi: hi) == 5  # nor above the heartbeat interval
    samples = [backoff_s(6, cap_s=60) for _ in range(2000)]
    assert 0 <= min(samples) < 3 and 29 < max(samples) <= 32  # spread over the whole range


def test_a_broken_watch_is_retried_within_the_watchs_length() -> None:
    # a platform restart drops every held watch at once: the first retry spreads over the 50 s window
    assert backoff_s(1, cap_s=60, floor_s=50, rand=lambda lo, hi: hi) == 50
    assert backoff_s(9, cap_s=60, floor_s=50, rand=lambda lo, hi: hi) == 60  # doubling still wins later
    assert backoff_s(1, cap_s=20, floor_s=50, rand=lambda lo, hi: hi) == 20  # never past the interval
    samples = [backoff_s(1, cap_s=60, floor_s=50) for _ in range(2000)]
    assert min(samples) < 3 and max(samples) > 45


def test_watch_carries_the_version_and_comes_back_at_once(fake_platform, runner_factory) -> None:
    fake_platform.heartbeat_answers = [
        {"heartbeat_interval_s": 60, "desired_version": "v1"},
        {"heartbeat_interval_s": 60, "desired_version": "v2"},  # a change: act, watch again at once
        {"heartbeat_interval_s": 60, "desired_version": "v2"},
    ]
    sleeps: list[float] = []
    runner, _ = runner_factory(sleeps)
    runner.run(max_ticks=2)
    first, second = fake_platform.heartbeats()
    assert "desired_version" not in first and "wait_s" not in first  # nothing known yet: answer at once
    assert second["desired_version"] == "v1" and second["wait_s"] == 50
    assert sleeps == []  # no sleep between watches
    assert runner.desired_version == "v2"


def test_a_watch_answered_early_and_unchanged_backs_off(fake_platform, runner_factory) -> None:
    fake_platform.heartbeat_answers = [{"heartbeat_interval_s": 60, "desired_version": "v1"}]
    runner, _ = runner_factory()
    assert runner.tick() == 0  # first answer: watch now
    waits = [runner.tick() for _ in range(3)]  # the fake answers at once with the same version
    assert all(0 <= w <= c for w, c in zip(waits, [1, 2, 4], strict=True)), waits
    assert runner.failures == 3


def test_against_a_platform_without_the_watch_it_polls_at_the_interval(fake_platform, runner_factory) -> None:
    fake_platform.heartbeat_interval_s = 30  # the fake answers no desired_version, like an older platform
    sleeps: list[float] = []
    runner, _ = runner_factory(sleeps)
    runner.run(max_ticks=3)
    assert sleeps == [30, 30]
    assert all("wait_s" not in hb and "desired_version" not in hb for hb in fake_platform.heartbeats())


def test_heartbeat_reports_wireguard_public_key_and_phase_only(fake_platform, runner_factory) -> None:
    runner, _ = runner_factory()
    runner.tick()
    body = fake_platform.heartbeats()[0]
    assert body["runtimes"] == {"docker": {"phase": "none"}}
    private = runner.store.read(st.WG_PRIVATE_KEY).decode().strip()
    assert body["wireguard_public_key"] == runner.wireguard_public_key() != private
    assert private.encode() not in b"".join(r.raw for r in fake_platform.requests)
    # The key is made once and kept.
    runner.tick()
    assert fake_platform.heartbeats()[1]["wireguard_public_key"] == body["wireguard_public_key"]


def test_sdwan_interfaces_follow_the_desired_state(fake_platform, runner_factory, agent_config) -> None:
    first, second = _sdwan(), _sdwan("9a9a9a9a-0000-4000-8000-000000000002")
    fake_platform.sdwan = [first, second]
    runner, wg = runner_factory()
    runner.tick()
    names = [m.interface for m in wg.up]
    assert names == [
        interface_name(agent_config.wg_interface_prefix, first["network_id"]),
        interface_name(agent_config.wg_interface_prefix, second["network_id"]),
    ]
    assert all(len(n) <= 15 for n in names)
    up = wg.up[0]
    assert (up.overlay_address, up.prefix) == (OVERLAY, "fd00:abcd:1::/64")
    assert up.hub.endpoint == "[fd00:ffff::1]:51820" and up.hub.allowed_ips == ("fd00:abcd:1::/64",)

    fake_platform.sdwan = [second]
    runner.tick()
    assert wg.down == [names[0]]
    assert runner.store.load()["wg_interfaces"] == {second["network_id"]: names[1]}


def test_provision_order_walks_the_handshake_once(fake_platform, runner_factory, fake_runtime) -> None:
    fake_platform.sdwan = [_sdwan()]
    fake_platform.runtime_orders = [{"runtime": "docker", "action": "provision", "host_id": None}]
    runner, _ = runner_factory()
    runner.run(max_ticks=3)
    assert fake_platform.phases() == ["installing", "wants_cert", "wants_config", "ready"]
    assert [h["runtimes"]["docker"] for h in fake_platform.heartbeats()] == [
        {"phase": "none"},
        {"phase": "ready", "version": "20.10.24+dfsg1"},
        {"phase": "ready", "version": "20.10.24+dfsg1"},
    ]
    assert runner.errors == []

    # dockerd died (and nothing restarted it): the next provision order starts it and re-posts ready.
    fake_runtime.running = False
    runner.tick()
    assert fake_platform.phases()[-1] == "ready"
    assert fake_runtime.running is True
    assert fake_platform.phases().count("wants_cert") == 1


def test_failed_provision_is_retried_on_the_next_heartbeat(fake_platform, runner_factory) -> None:
    fake_platform.sdwan = [_sdwan()]
    fake_platform.runtime_orders = [{"runtime": "docker", "action": "provision", "host_id": None}]
    fake_platform.errors["wants_config"] = (502, "CaUnavailableError", "Vault is sealed")
    runner, _ = runner_factory()
    runner.tick()
    assert fake_platform.phases()[-1] == "failed"
    assert runner.errors
    runner.tick()
    assert fake_platform.heartbeats()[1]["runtimes"]["docker"] == {"phase": "failed"}
    assert fake_platform.phases()[-1] == "ready"


def test_decommission_order(fake_platform, runner_factory, fake_runtime, agent_config) -> None:
    fake_platform.sdwan = [_sdwan()]
    fake_platform.runtime_orders = [{"runtime": "docker", "action": "provision", "host_id": None}]
    runner, _ = runner_factory()
    runner.tick()
    fake_platform.runtime_orders = [
        {"runtime": "docker", "action": "decommission", "host_id": fake_platform.host_id}
    ]
    runner.tick()
    assert fake_runtime.running is False
    assert not agent_config.daemon_json_path.exists()
    assert not (agent_config.docker_tls_dir / "key.pem").exists()
    assert not runner.store.path(st.DOCKER_KEY).exists()
    assert fake_platform.handshakes()[-1] == {
        "runtime": "docker",
        "phase": "decommissioned",
        "host_id": fake_platform.host_id,
    }
    fake_platform.runtime_orders = []
    runner.tick()
    assert fake_platform.heartbeats()[-1]["runtimes"]["docker"] == {"phase": "decommissioned"}


# --- CLI ------------------------------------------------------------------------------------------------


def test_cli_run_once_and_status(fake_platform, tmp_path, monkeypatch, capsys) -> None:
    state_dir = tmp_path / "state"
    monkeypatch.setenv("POWERNODE_URL", fake_platform.url)
    monkeypatch.setenv("POWERNODE_AGENT_TOKEN", fake_platform.token)
    monkeypatch.setenv("POWERNODE_AGENT_STATE_DIR", str(state_dir))
    assert main(["run", "--once", "--dockerd-launch", "child"]) == 0
    assert len(fake_platform.heartbeats()) == 1

    assert main(["status"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["instance_id"] == fake_platform.instance_id
    assert out["docker"]["phase"] == "none"
    assert out["wireguard_public_key"] == fake_platform.heartbeats()[0]["wireguard_public_key"]
    assert (state_dir / st.WG_PRIVATE_KEY).read_text().strip() not in json.dumps(out)


def test_cli_run_once_exits_1_when_the_platform_refuses(fake_platform, tmp_path) -> None:
    code = main(
        [
            "run",
            "--once",
            "--url",
            fake_platform.url,
            "--token",
            "pna_wrong",
            "--state-dir",
            str(tmp_path / "s"),
        ]
    )
    assert code == 1


def test_cli_without_url_exits_2(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.delenv("POWERNODE_URL", raising=False)
    monkeypatch.setenv("POWERNODE_AGENT_TOKEN", "pna_x")
    assert main(["run", "--once", "--state-dir", str(tmp_path)]) == 2
    assert "POWERNODE_URL" in capsys.readouterr().err


def test_console_script_is_installed() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "powernode_agent.cli", "--version"], capture_output=True, text=True
    )
    assert result.returncode == 0
    assert result.stdout.startswith("powernode-agent ")
