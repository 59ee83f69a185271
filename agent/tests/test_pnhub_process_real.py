"""``powernode-agent hub run`` as a process in a hub namespace, against a fake platform in that namespace."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pnagent_netns import in_netns
from pnhub_topology import make_topology
from test_pnhub_platform import KEY, TOKEN, FakeHubPlatform

pytestmark = pytest.mark.lab

AGENT_DIR = Path(__file__).resolve().parent.parent


def test_run_applies_reports_its_key_and_exits_cleanly_on_sigterm_leaving_tunnels_up(root_tools) -> None:
    root_tools("ip", "nsenter", "wireguard-go", "wg", "nft", "sysctl")
    topo = make_topology()
    platform = None
    proc = None
    try:
        # the platform's socket is made inside the hub namespace: the hub reaches it on its own loopback
        platform = in_netns(topo.hub_ns, FakeHubPlatform)
        platform.thread.start()
        env = dict(os.environ, PYTHONPATH=str(AGENT_DIR), POWERNODE_HUB_TOKEN=TOKEN)
        proc = subprocess.Popen(
            [
                "nsenter", f"--net=/var/run/netns/{topo.hub_ns}",
                sys.executable, "-m", "powernode_agent.cli", "hub", "run",
                "--url", platform.url, "--state-dir", str(topo.config.state_dir),
                "--interface-prefix", topo.config.interface_prefix,
            ],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 20
        reported = None
        while time.monotonic() < deadline and reported is None:
            for request in list(platform.requests):
                status = request["body"].get("status") or {}
                if status.get("applied_version") == "v1" and status.get("networks"):
                    reported = status
            time.sleep(0.1)
        assert reported is not None, "the hub never reported an applied v1"
        (net,) = reported["networks"]
        assert len(net["public_key"]) == 44 and [p["public_key"] for p in net["peers"]] == [KEY]
        assert platform.requests[0]["auth"] == f"Bearer {TOKEN}"

        # The platform now holds the hub's syncs (the watch, up to wait_s): SIGTERM still ends it at once.
        platform.hold_s = 60
        assert platform.held.wait(timeout=20), "the hub never made a sync the platform could hold"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0  # not after the 25 s hold
        log = proc.stderr.read()
        assert "sync: desired_version v1" in log and "nft: table inet powernode_hub applied" in log
        links = topo.in_hub("ip", "-o", "link", "show").stdout
        assert topo.config.interface_prefix in links and "UP" in links  # the tunnel outlives the process
        assert topo.in_hub("nft", "list", "table", "inet", "powernode_hub", check=False).returncode == 0
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        if platform is not None:
            platform.server.shutdown()
            platform.server.server_close()
        topo.cleanup()
