"""The agent from the platform: /agent/ downloads, the reproducible wheel, system_agent_install_command and the
enrollment command in system_provision_instance's answer (the token only there, never in a URL)."""

from __future__ import annotations

import base64
import hashlib
import re
import shutil
import subprocess
import sys
import zipfile
from io import BytesIO
from pathlib import Path

import pytest
from django.test import Client

from apps.nodes import agent_dist

ROOT = Path(__file__).resolve().parents[2]
URL = "https://platform.example.net"


@pytest.fixture
def client() -> Client:
    return Client()


@pytest.fixture
def fresh_wheel():
    """agent_wheel() is built once per process: forget it around tests that change its source."""
    agent_dist.agent_wheel.cache_clear()
    yield
    agent_dist.agent_wheel.cache_clear()


def test_latest_redirects_to_the_wheel_whose_sha256_is_published(client, db):
    latest = client.get("/agent/latest")
    assert latest.status_code == 302
    assert re.fullmatch(r"/agent/powernode_agent-[0-9.]+-py3-none-any\.whl", latest["Location"])
    download = client.get(latest["Location"])
    assert download.status_code == 200
    digest = hashlib.sha256(download.content).hexdigest()
    sums = client.get("/agent/SHA256SUMS").content.decode()
    assert sums == f"{digest}  {latest['Location'].removeprefix('/agent/')}\n"
    assert download["Digest"] == "sha-256=" + base64.b64encode(hashlib.sha256(download.content).digest()).decode()
    with zipfile.ZipFile(BytesIO(download.content)) as wheel:
        names = wheel.namelist()
    assert "powernode_agent/cli.py" in names and "powernode_agent/hub/runner.py" in names
    assert names[-1].endswith(".dist-info/RECORD")


def test_the_wheel_is_the_same_bytes_from_a_copy_of_the_source(tmp_path):
    """Several platform processes (or hosts) build it on their own: the sha256 a page shows must match
    whichever one serves the download, whatever the files' times."""
    copy = tmp_path / "agent"
    shutil.copytree(ROOT / "agent", copy, ignore=shutil.ignore_patterns("tests", "__pycache__", "*.egg-info"))
    for path in copy.rglob("*.py"):
        path.touch()
    assert agent_dist.build_wheel(copy).content == agent_dist.build_wheel(ROOT / "agent").content
    (copy / "powernode_agent" / "cli.py").write_text("# changed\n", encoding="utf-8")
    assert agent_dist.build_wheel(copy).sha256 != agent_dist.build_wheel(ROOT / "agent").sha256


def test_the_wheel_installs_with_pip_and_its_script_runs(tmp_path):
    wheel = agent_dist.agent_wheel()
    path = tmp_path / wheel.filename
    path.write_bytes(wheel.content)
    target = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", target], check=True)
    python = target / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-index", "--no-deps", path],
        check=True,
        env={"PATH": "/usr/bin:/bin", "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    shown = subprocess.run(
        [target / "bin" / "powernode-agent", "--help"], capture_output=True, text=True, check=True
    )
    assert "--token-file" in shown.stdout
    files = subprocess.run(
        [python, "-c", "import powernode_agent.hub.cli as m; print(m.__file__)"],
        capture_output=True, text=True, check=True,
    )
    assert files.stdout.startswith(str(target))  # the installed copy, not the checkout's

    # the built-in unit, pointed at this install as install.sh points it, passes systemd's own check
    config = tmp_path / "etc"
    config.mkdir()
    (config / "agent.env").write_text("POWERNODE_URL=https://platform.example.net\n")
    unit = tmp_path / "powernode-agent.service"
    text = (agent_dist.FILES_DIR / "powernode-agent.service").read_text()
    unit.write_text(text.replace("/opt/powernode-agent", str(target)).replace("/etc/powernode-agent", str(config)))
    verified = subprocess.run(["systemd-analyze", "verify", unit], capture_output=True, text=True)
    assert verified.returncode == 0, verified.stderr


def test_another_version_is_a_404_naming_the_one_served(client, db):
    response = client.get("/agent/powernode_agent-0.0.1-py3-none-any.whl")
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["type"] == "NotFound" and error["details"]["served"] == agent_dist.agent_wheel().filename


def test_downloads_take_get_only(client, db):
    for path in ("/agent/install.sh", "/agent/latest", agent_dist.agent_wheel().path):
        assert client.post(path).status_code == 405


def test_install_script_pins_the_wheel_it_downloads(client, db):
    script = client.get("/agent/install.sh")
    assert script.status_code == 200 and script["Content-Type"].startswith("text/x-shellscript")
    text = script.content.decode()
    wheel = agent_dist.agent_wheel()
    assert f"WHEEL={wheel.filename}\n" in text and f"WHEEL_SHA256={wheel.sha256}\n" in text
    assert "@WHEEL" not in text
    checked = subprocess.run(["sh", "-n"], input=text, text=True, capture_output=True)
    assert checked.returncode == 0, checked.stderr


def test_install_script_refuses_a_token_argument_and_a_missing_token(client, db, tmp_path):
    script = tmp_path / "install.sh"
    script.write_bytes(client.get("/agent/install.sh").content)
    def install(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["sh", script, *args], capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})

    as_arg = install("--url", URL, "--token", "pna_x")
    assert as_arg.returncode == 1 and "not as an argument" in as_arg.stderr
    missing = install("--url", URL)
    assert missing.returncode == 1 and "no agent token" in missing.stderr


def test_unit_is_the_deployments_file_when_it_exists(client, db, settings, tmp_path):
    settings.POWERNODE_AGENT_UNIT_FILE = tmp_path / "missing.service"
    built_in = client.get("/agent/powernode-agent.service").content.decode()
    assert "EnvironmentFile=/etc/powernode-agent/agent.env" in built_in
    assert "ExecStart=/opt/powernode-agent/bin/powernode-agent run" in built_in
    deployed = tmp_path / "powernode-agent.service"
    deployed.write_text("[Service]\nExecStart=/opt/powernode-agent/bin/powernode-agent run\n")
    settings.POWERNODE_AGENT_UNIT_FILE = deployed
    assert client.get("/agent/powernode-agent.service").content.decode() == deployed.read_text()


def test_install_command_needs_a_platform_url(api, fleet, settings):
    settings.POWERNODE_PUBLIC_URL = ""
    status, body = api.call("system_agent_install_command", {"id": fleet["instance"]["id"]})
    assert status == 400 and "POWERNODE_PUBLIC_URL" in body["error"]["message"]
    for bad in (
        "ftp://platform", "https://platform/sub", "https://platform?x=1", "platform", "http://[zz", "http://p:x",
        "https://user:pw@platform",
    ):
        status, body = api.call("system_agent_install_command", {"id": fleet["instance"]["id"], "platform_url": bad})
        assert status == 400, (bad, body)
        assert body["error"]["type"] == "ValidationError"


def test_install_command_without_the_token_and_with_it_only_at_provisioning(api, fleet, settings):
    settings.POWERNODE_PUBLIC_URL = URL
    shown = api.ok("system_agent_install_command", {"id": fleet["instance"]["id"]})
    wheel = agent_dist.agent_wheel()
    assert shown["command"] == f"curl -fsSLg {URL}/agent/install.sh | sh -s -- --url {URL}"
    assert shown["token_included"] is False and "pna_" not in shown["command"].replace("pna_...", "")
    assert shown["wheel"] == {
        "filename": wheel.filename, "version": wheel.version, "sha256": wheel.sha256, "url": URL + wheel.path
    }

    made = api.ok("system_provision_instance", {"template_id": fleet["template"]["id"], "name": "node-9"})
    token = made["agent_token"]
    command = made["install_command"]
    assert f"POWERNODE_AGENT_TOKEN={token} sh -s --" in command
    assert all(token not in url for url in re.findall(r"https?://\S+", command))  # never in a URL
    again = api.ok("system_agent_install_command", {"id": made["instance"]["id"]})
    assert token not in again["command"]


def test_provisioning_without_a_public_url_has_no_command(api, fleet, settings):
    settings.POWERNODE_PUBLIC_URL = ""
    made = api.ok("system_provision_instance", {"template_id": fleet["template"]["id"], "name": "node-9"})
    assert made["install_command"] is None and made["agent_token"].startswith("pna_")


def test_plain_http_off_loopback_says_insecure_http(api, fleet):
    overlay = api.ok(
        "system_agent_install_command", {"id": fleet["instance"]["id"], "platform_url": "http://[fd00:1::1]:8000"}
    )["command"]
    assert overlay.endswith("--url 'http://[fd00:1::1]:8000' --insecure-http")
    loopback = api.ok(
        "system_agent_install_command", {"id": fleet["instance"]["id"], "platform_url": "http://127.0.0.1:8000"}
    )["command"]
    assert "--insecure-http" not in loopback


def test_a_private_platform_ca_is_served_and_pinned_in_the_command(api, fleet, client, settings, tmp_path):
    assert client.get("/agent/platform-ca.pem").status_code == 404
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    settings.POWERNODE_AGENT_PLATFORM_CA_FILE = str(ca)
    served = client.get("/agent/platform-ca.pem").content
    assert served == ca.read_bytes()
    command = api.ok("system_agent_install_command", {"id": fleet["instance"]["id"], "platform_url": URL})["command"]
    assert f"echo '{hashlib.sha256(served).hexdigest()}  {agent_dist.CA_DOWNLOAD_TO}' | sha256sum -c" in command
    assert f"--ca-file {agent_dist.CA_DOWNLOAD_TO}" in command
    assert command.count("--cacert") == 1  # the script itself comes over the pinned CA


def test_a_deleted_instance_has_no_command(api, fleet):
    api.ok("system_delete_instance", {"id": fleet["instance"]["id"]})
    status, body = api.call("system_agent_install_command", {"id": fleet["instance"]["id"], "platform_url": URL})
    assert status == 404 and body["error"]["type"] == "NotFound"


def test_the_command_writes_the_served_wheel(tmp_path, capsys):
    from django.core.management import call_command

    call_command("agent_wheel", "--out", str(tmp_path / "mirror"))
    sha, path = capsys.readouterr().out.split()
    assert Path(path).read_bytes() == agent_dist.agent_wheel().content
    assert sha == hashlib.sha256(Path(path).read_bytes()).hexdigest()
    checked = subprocess.run(["sha256sum", "-c", "-"], input=f"{sha}  {path}\n", text=True, capture_output=True)
    assert checked.returncode == 0
