"""AgentConfig layering and validation; the state directory's permissions and atomic writes."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from powernode_agent.config import AgentConfig, ConfigError, load_config
from powernode_agent.state import StateStore, atomic_write


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_flags_win_over_env_which_wins_over_the_json_file(tmp_path: Path) -> None:
    file = tmp_path / "agent.json"
    file.write_text(
        json.dumps(
            {
                "platform_url": "http://file",
                "state_dir": "/from/file",
                "wg_backend": "kernel",
                "daemon_json_extras": {"bip": "198.18.1.1/24"},
            }
        )
    )
    env = {
        "POWERNODE_URL": "http://env",
        "POWERNODE_AGENT_TOKEN": "pna_env",
        "POWERNODE_AGENT_STATE_DIR": "/from/env",
    }
    config = load_config(flags={"state_dir": "/from/flag", "wg_backend": None}, env=env, config_file=file)
    assert config.platform_url == "http://env"
    assert config.agent_token == "pna_env"
    assert config.state_dir == Path("/from/flag")
    assert config.wg_backend == "kernel"  # a None flag does not override
    assert config.daemon_json_extras == {"bip": "198.18.1.1/24"}


def test_token_file_prefix_and_extras_from_env(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("pna_from_file\n")
    env = {
        "POWERNODE_AGENT_TOKEN_FILE": str(token),
        "POWERNODE_AGENT_DOCKERD_PREFIX": "unshare -m sh -c 'mount --bind /a /etc/hosts && exec \"$@\"' sh",
        "POWERNODE_AGENT_DAEMON_EXTRAS": '{"data-root": "/srv/docker", "insecure-registries": ["reg:5000"]}',
        "POWERNODE_AGENT_HEARTBEAT_INTERVAL": "1.5",
    }
    config = load_config(env=env)
    assert config.agent_token == "pna_from_file"
    assert config.dockerd_command_prefix == [
        "unshare",
        "-m",
        "sh",
        "-c",
        'mount --bind /a /etc/hosts && exec "$@"',
        "sh",
    ]
    assert config.daemon_json_extras["insecure-registries"] == ["reg:5000"]
    assert config.heartbeat_interval_s == 1.5


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"platform_url": ""}, "platform URL"),
        ({"agent_token": ""}, "agent token"),
        ({"wg_backend": "boringtun"}, "wireguard backend"),
        ({"dockerd_launch": "openrc"}, "launch mode"),
        ({"wg_interface_prefix": "much-too-long"}, "prefix"),
        ({"daemon_json_extras": {"hosts": ["tcp://0.0.0.0:2375"]}}, "hosts"),
        ({"daemon_json_extras": {"tlsverify": False}}, "tlsverify"),
    ],
)
def test_validate_names_the_broken_setting(changes: dict, message: str) -> None:
    config = AgentConfig(**{"platform_url": "https://x", "agent_token": "pna_x", **changes})
    with pytest.raises(ConfigError, match=message):
        config.validate()


def test_unknown_keys_in_the_json_file_are_refused(tmp_path: Path) -> None:
    file = tmp_path / "agent.json"
    file.write_text(json.dumps({"platform_ur": "typo"}))
    with pytest.raises(ConfigError, match="platform_ur"):
        load_config(env={}, config_file=file)


def test_state_dir_is_0700_and_files_0600(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state")
    store.ensure()
    store.write("docker-key.pem", b"secret")
    store.update(docker_phase="installing")
    assert _mode(store.dir) == 0o700
    assert _mode(store.path("docker-key.pem")) == 0o600
    assert _mode(store.path("state.json")) == 0o600


def test_ensure_tightens_a_loosened_state_dir(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state")
    store.ensure()
    store.write("wireguard.key", "k")
    os.chmod(store.dir, 0o755)
    os.chmod(store.path("wireguard.key"), 0o644)
    store.ensure()
    assert _mode(store.dir) == 0o700
    assert _mode(store.path("wireguard.key")) == 0o600


def test_atomic_write_replaces_whole_and_leaves_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "daemon.json"
    target.write_text("old")
    os.chmod(target, 0o644)
    atomic_write(target, b"new content")
    assert target.read_bytes() == b"new content"
    assert _mode(target) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["daemon.json"]


def test_atomic_write_failure_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    target.write_text("old")

    class Boom:
        def __bytes__(self) -> bytes:
            raise RuntimeError

    with pytest.raises(TypeError):
        atomic_write(target, Boom())  # type: ignore[arg-type]
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_update_merges_and_none_deletes(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "s")
    store.update(host_id="host-1", docker_phase="ready")
    data = store.update(host_id=None, docker_version="20.10.24")
    assert data == {"docker_phase": "ready", "docker_version": "20.10.24"}
    assert store.load() == data


def test_a_broken_state_file_restarts_from_zero(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "s")
    store.write("state.json", "{not json")
    assert store.load() == {}
    store.write("state.json", b"\x80\x81{}")  # not UTF-8
    assert store.load() == {}
    store.write("state.json", "[1, 2]")
    assert store.load() == {}
