"""Issue 11 item 3: no plain-http platform URL off loopback without an explicit opt-in; a pinned CA bundle
is what the agent trusts for https. Item 8: a refused WireGuard key does not stop the heartbeat loop."""

from __future__ import annotations

import json
import logging
import ssl
from pathlib import Path

import pytest
from pnagent_fakes import FakePlatform

from powernode_agent.cli import build_parser, main
from powernode_agent.config import AgentConfig, ConfigError, load_config
from powernode_agent.platform_api import PlatformClient
from powernode_agent.runner import Runner

OVERLAY_URL = "http://[fd70:6e6c:6162::1]:8000"  # the lab's platform: overlay/ULA, not loopback


@pytest.mark.parametrize("url", [OVERLAY_URL, "http://platform.example.net", "http://10.1.2.3:8000"])
def test_plain_http_off_loopback_is_refused_with_a_clear_message(url, tmp_path, capsys) -> None:
    config = AgentConfig(platform_url=url, agent_token="pna_x")
    with pytest.raises(ConfigError, match="refusing the plain-http platform URL.*--insecure-http"):
        config.validate()
    with pytest.raises(ConfigError, match="https://"):
        PlatformClient(url, "pna_x")  # the client itself never sends the token there either
    assert main(["run", "--once", "--url", url, "--token", "pna_x", "--state-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "refusing the plain-http platform URL" in err and "--insecure-http" in err


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8000", "http://127.9.8.7", "http://[::1]:8000", "http://localhost:8000", "https://x"],
)
def test_loopback_http_and_https_are_allowed(url) -> None:
    AgentConfig(platform_url=url, agent_token="pna_x").validate()
    PlatformClient(url, "pna_x")


def test_the_explicit_opt_in_allows_plain_http(tmp_path: Path) -> None:
    flags = vars(
        build_parser().parse_args(["run", "--url", OVERLAY_URL, "--token", "pna_x", "--insecure-http"])
    )
    config = load_config(flags={k: v for k, v in flags.items() if k != "command"}, env={})
    assert config.insecure_http is True
    config.validate()
    PlatformClient(OVERLAY_URL, "pna_x", insecure_http=True)

    by_env = load_config(
        env={"POWERNODE_URL": OVERLAY_URL, "POWERNODE_AGENT_TOKEN": "t", "POWERNODE_AGENT_INSECURE_HTTP": "1"}
    )
    by_env.validate()
    file = tmp_path / "agent.json"
    file.write_text(json.dumps({"platform_url": OVERLAY_URL, "agent_token": "t", "insecure_http": True}))
    load_config(env={}, config_file=file).validate()
    # without any opt-in the same settings are refused
    file.write_text(json.dumps({"platform_url": OVERLAY_URL, "agent_token": "t"}))
    with pytest.raises(ConfigError, match="plain-http"):
        load_config(env={}, config_file=file).validate()


@pytest.fixture
def https_platform(test_ca, tmp_path: Path):
    """The fake platform behind TLS on 127.0.0.1, its certificate from a throwaway CA."""
    key_pem, cert_pem = test_ca.server_keypair("127.0.0.1", cn="platform")
    (tmp_path / "server.key").write_bytes(key_pem)
    (tmp_path / "server.pem").write_bytes(cert_pem)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "server.pem", tmp_path / "server.key")
    platform = FakePlatform(test_ca)
    platform.server.socket = context.wrap_socket(platform.server.socket, server_side=True)
    platform.url = platform.url.replace("http://", "https://")
    platform.thread.start()
    try:
        yield platform
    finally:
        platform.server.shutdown()
        platform.server.server_close()


def test_the_ca_bundle_is_what_the_agent_trusts_for_https(https_platform, test_ca, tmp_path: Path) -> None:
    bundle = tmp_path / "platform-ca.pem"
    bundle.write_bytes(test_ca.pem)
    argv = [
        "run",
        "--once",
        "--url",
        https_platform.url,
        "--token",
        https_platform.token,
        "--dockerd-launch",
        "child",
    ]

    assert main([*argv, "--state-dir", str(tmp_path / "s1")]) == 1  # system store: the private CA is unknown
    assert https_platform.heartbeats() == []

    assert main([*argv, "--state-dir", str(tmp_path / "s2"), "--ca-bundle", str(bundle)]) == 0
    assert len(https_platform.heartbeats()) == 1

    file = tmp_path / "agent.json"  # the same through the config file's key
    file.write_text(json.dumps({"ca_bundle": str(bundle)}))
    assert main([*argv, "--state-dir", str(tmp_path / "s3"), "--config", str(file)]) == 0
    assert len(https_platform.heartbeats()) == 2


def test_a_refused_wireguard_key_is_logged_and_the_loop_goes_on(
    fake_platform, agent_config, fake_runtime, caplog
) -> None:
    fake_platform.errors["heartbeat"] = (409, "PeerKeyConflictError", "key differs from the pinned key")
    sleeps: list[float] = []
    runner = Runner(agent_config, store=fake_runtime.store, runtime=fake_runtime, sleep=sleeps.append)
    with caplog.at_level(logging.ERROR):
        runner.run(max_ticks=2)
    assert len(fake_platform.heartbeats()) == 2  # the refusal did not end the loop
    assert len(sleeps) == 1 and 0 <= sleeps[0] <= 1  # retried after the first backoff step (full jitter)
    assert "system_sdwan_reset_peer_key" in caplog.text
    assert not runner.errors  # the second heartbeat went through
