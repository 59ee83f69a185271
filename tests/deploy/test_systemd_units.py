"""The systemd units under deploy/systemd pass ``systemd-analyze verify`` with nothing to say.

``verify`` needs the units' ExecStart binaries to exist, so each unit is checked inside a throwaway root
(``--root``): the machine's own unit directory copied in (targets such as multi-user.target), the unit
under /etc/systemd/system, and an executable stub at every absolute path its Exec*= lines name.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.needs import need, need_tools

BASE_DIR = Path(__file__).resolve().parents[2]
UNIT_DIR = BASE_DIR / "deploy" / "systemd"
UNITS = sorted(p.name for p in UNIT_DIR.glob("*.service"))
EXEC_KEYS = ("ExecStart", "ExecStartPre", "ExecStartPost", "ExecReload", "ExecStop", "ExecStopPost")
SYSTEM_UNITS = next((p for p in (Path("/lib/systemd/system"), Path("/usr/lib/systemd/system")) if p.is_dir()), None)


def _executables(unit: str) -> set[str]:
    found = set()
    for line in unit.splitlines():
        key, _, value = line.partition("=")
        if key.strip() in EXEC_KEYS and value.strip():
            found.add(value.strip().lstrip("-+!@:").split()[0])
    return found


def verify(unit_text: str, name: str, root: Path) -> subprocess.CompletedProcess[str]:
    need_tools("systemd-analyze")
    need(SYSTEM_UNITS is not None, "no systemd unit directory (/lib/systemd/system) to copy targets from")
    if not (root / "lib" / "systemd" / "system").exists():
        shutil.copytree(SYSTEM_UNITS, root / "lib" / "systemd" / "system", symlinks=True)
    target = root / "etc" / "systemd" / "system" / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(unit_text)
    for path in _executables(unit_text):
        assert path.startswith("/"), f"{name}: {path} is not an absolute path"
        stub = root / path.lstrip("/")
        stub.parent.mkdir(parents=True, exist_ok=True)
        stub.write_text("#!/bin/sh\nexit 0\n")
        stub.chmod(0o755)
    return subprocess.run(
        ["systemd-analyze", "verify", f"--root={root}", name], capture_output=True, text=True, timeout=120
    )


def test_the_four_units_are_there() -> None:
    assert UNITS == [
        "powernode-agent.service",
        "powernode-hub.service",
        "powernode-worker.service",
        "powernode.service",
    ]


@pytest.mark.parametrize("name", UNITS)
def test_unit_verifies_cleanly(name: str, tmp_path: Path) -> None:
    done = verify((UNIT_DIR / name).read_text(), name, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (done.stdout + done.stderr).strip() == "", "systemd-analyze has something to say:\n" + done.stderr


def test_the_check_catches_a_misspelt_option_and_a_missing_binary(tmp_path: Path) -> None:
    text = (UNIT_DIR / "powernode-worker.service").read_text()
    misspelt = verify(text.replace("ProtectHome=yes", "ProtectHomme=yes"), "powernode-worker.service", tmp_path)
    assert "Unknown key 'ProtectHomme'" in misspelt.stderr

    (tmp_path / "opt" / "powernode" / ".venv" / "bin" / "python").unlink()
    missing = subprocess.run(
        ["systemd-analyze", "verify", f"--root={tmp_path}", "powernode-worker.service"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert missing.returncode != 0 and "is not executable" in missing.stderr


def test_hub_and_agent_keep_what_they_need() -> None:
    hub = (UNIT_DIR / "powernode-hub.service").read_text()
    agent = (UNIT_DIR / "powernode-agent.service").read_text()
    assert "KillMode=process" in hub  # tunnels survive a hub restart (docs/runbooks/hub.md)
    assert "CAP_NET_ADMIN" in hub.split("CapabilityBoundingSet=")[1].splitlines()[0]
    for forbidden in ("ProtectKernelTunables=yes", "PrivateDevices=yes", "ProtectKernelModules=yes"):
        assert forbidden not in hub
    for forbidden in ("NoNewPrivileges=yes", "ProtectSystem=", "CapabilityBoundingSet=", "PrivateTmp=yes"):
        assert forbidden not in agent  # apt-get, /etc/docker, systemctl; dockerd as a child would inherit them
    for name in ("powernode.service", "powernode-worker.service"):
        assert "EnvironmentFile=/etc/powernode/powernode.env" in (UNIT_DIR / name).read_text()
