"""The enrollment command system_provision_instance returns, run for real against a live platform: install.sh
downloads the wheel, checks its sha256, installs it into a virtualenv, writes the token and agent.env; the
installed agent then heartbeats with that configuration. Every URL the platform saw is recorded: the token is in
none of them (so in no access log line)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.signals import request_started

BASE_PYTHON = Path(sys.base_prefix) / "bin" / "python3"  # the interpreter the test venv was made from


@pytest.fixture
def seen_urls():
    """PATH_INFO?QUERY_STRING of every request the live server answers during the test."""
    urls: list[str] = []

    def record(sender, environ, **kwargs):  # noqa: ANN001, ANN202
        urls.append(f"{environ.get('PATH_INFO', '')}?{environ.get('QUERY_STRING', '')}")

    request_started.connect(record, weak=False)
    yield urls
    request_started.disconnect(record)


def test_the_enrollment_command_installs_an_agent_that_heartbeats(
    live_server, api, catalog, settings, tmp_path, seen_urls
):
    settings.POWERNODE_PUBLIC_URL = live_server.url
    template = api.ok("system_create_node_template", {"name": "bare-nodes"})["template"]
    made = api.ok("system_provision_instance", {"template_id": template["id"], "name": "enrolled-1"})
    token, command = made["agent_token"], made["install_command"]
    prefix, config = tmp_path / "opt", tmp_path / "etc"
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        # where a test may write: the defaults are /opt/powernode-agent and /etc/powernode-agent
        "POWERNODE_AGENT_PREFIX": str(prefix),
        "POWERNODE_AGENT_CONFIG_DIR": str(config),
        "POWERNODE_AGENT_PYTHON": str(BASE_PYTHON),  # has cryptography: nothing to fetch from an index
        "POWERNODE_AGENT_NO_SYSTEMD": "1",
        "POWERNODE_AGENT_OFFLINE": "1",
    }
    for _ in ("install", "run again: the upgrade in place"):
        done = subprocess.run(["sh", "-c", command], env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        assert "no systemd here (or --no-systemd)" in done.stderr

    assert (config / "token").read_text().strip() == token
    assert stat.S_IMODE((config / "token").stat().st_mode) == 0o600
    assert stat.S_IMODE(config.stat().st_mode) == 0o700
    agent_env = dict(line.split("=", 1) for line in (config / "agent.env").read_text().splitlines())
    assert agent_env == {"POWERNODE_URL": live_server.url, "POWERNODE_AGENT_TOKEN_FILE": str(config / "token")}

    run = subprocess.run(
        [prefix / "bin" / "powernode-agent", "run", "--once", "--state-dir", tmp_path / "state"],
        env={"PATH": os.environ["PATH"], **agent_env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    instance = api.ok("system_get_instance", {"id": made["instance"]["id"]})["instance"]
    assert instance["status"] == "online"

    wheel = api.ok("system_agent_install_command", {"id": made["instance"]["id"]})["wheel"]
    paths = [url.split("?")[0] for url in seen_urls]
    assert {"/agent/install.sh", f"/agent/{wheel['filename']}", "/api/v1/agent/heartbeat"} <= set(paths)
    assert not [url for url in seen_urls if "pna_" in url or token in url]
