"""The agent as a process in a node namespace: real WireGuard to a hub, real dockerd, a fake platform.

This is the command line the lab uses. The platform here is the fake (the lab runs the real one); what is real
is everything on the node: the wireguard-go interface, the overlay /128, dockerd with mutual TLS, the restart
of a killed agent mid-handshake, and decommission stopping dockerd.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pnagent_netns import (
    add_netns,
    del_netns,
    in_netns,
    kill_processes_mentioning,
    mtls_get_version,
    sh,
    unmount_under,
)

from powernode_agent.wireguard import (
    HubPeer,
    Membership,
    WireGuardManager,
    generate_private_key,
    public_key_for,
)

pytestmark = pytest.mark.lab

UNDERLAY_HUB, UNDERLAY_NODE = "fd00:99:1::1", "fd00:99:1::2"
PREFIX, HUB_OVERLAY, NODE_OVERLAY = "fd00:abcd:1::/64", "fd00:abcd:1::1", "fd00:abcd:1::2"
_SCRIPT = Path(sys.executable).with_name("powernode-agent")
# The console script when the package is installed, else the same entry point from the checkout.
AGENT = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "powernode_agent.cli"]


def _wait(predicate: Callable[[], bool], what: str, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.1)


@pytest.fixture
def lab(root_tools, test_ca) -> Iterator[dict]:
    root_tools("ip", "nsenter", "unshare", "wireguard-go", "wg", "dockerd", "iptables")
    from pnagent_fakes import FakePlatform

    tag = secrets.token_hex(2)
    ns_hub, ns_node = f"pnagt-h-{tag}", f"pnagt-n-{tag}"
    hub_if = f"pnagh{tag}"
    workdir = Path(tempfile.mkdtemp(prefix=f"pnagt-e{tag}-"))
    agents: list[subprocess.Popen] = []
    platform = None
    add_netns(ns_hub)
    add_netns(ns_node)
    try:
        sh(
            "ip",
            "link",
            "add",
            f"pnvh{tag}",
            "netns",
            ns_hub,
            "type",
            "veth",
            "peer",
            "name",
            f"pnvn{tag}",
            "netns",
            ns_node,
        )
        sh("ip", "-n", ns_hub, "-6", "addr", "add", f"{UNDERLAY_HUB}/64", "dev", f"pnvh{tag}", "nodad")
        sh("ip", "-n", ns_node, "-6", "addr", "add", f"{UNDERLAY_NODE}/64", "dev", f"pnvn{tag}", "nodad")
        sh("ip", "-n", ns_hub, "link", "set", f"pnvh{tag}", "up")
        sh("ip", "-n", ns_node, "link", "set", f"pnvn{tag}", "up")

        (workdir / "hosts").write_text("fd00:abcd:1::99 registry.pnagt.test\n")
        hub_key = generate_private_key()
        (workdir / "hub.key").write_text(hub_key + "\n")
        os.chmod(workdir / "hub.key", 0o600)
        # The fake platform listens on the hub's underlay address, inside the hub namespace.
        platform = in_netns(ns_hub, lambda: FakePlatform(test_ca, bind=(UNDERLAY_HUB, 0)))
        platform.thread.start()
        network_id = str(uuid.uuid4())
        platform.sdwan = [
            {
                "network_id": network_id,
                "network_name": "lab-a",
                "peer_id": str(uuid.uuid4()),
                "prefix": PREFIX,
                "overlay_address": NODE_OVERLAY,
                "hub": {
                    "public_key": public_key_for(hub_key),
                    "endpoint": f"[{UNDERLAY_HUB}]:51820",
                    "overlay_address": HUB_OVERLAY,
                },
            }
        ]
        platform.heartbeat_interval_s = 1

        def start_agent() -> subprocess.Popen:
            extras = {
                "data-root": str(workdir / "data"),
                "exec-root": str(workdir / "exec"),
                "pidfile": str(workdir / "docker.pid"),
                "bip": "198.18.44.1/24",
            }
            argv = [
                "nsenter",
                f"--net=/var/run/netns/{ns_node}",
                *AGENT,
                "run",
                "--insecure-http",  # the fake platform listens on the hub namespace's ULA, not loopback
                "--state-dir",
                str(workdir / "state"),
                "--wg-prefix",
                f"pnag{tag}",
                "--dockerd-launch",
                "child",
                "--dockerd-prefix",
                "unshare -m --propagation private sh -c "
                f"'mount --bind {workdir / 'hosts'} /etc/hosts && exec \"$@\"' sh",
                "--docker-tls-dir",
                str(workdir / "tls"),
                "--daemon-json",
                str(workdir / "daemon.json"),
                "--daemon-extras-json",
                json.dumps(extras),
            ]
            env = dict(os.environ, POWERNODE_URL=platform.url, POWERNODE_AGENT_TOKEN=platform.token)
            env["PYTHONPATH"] = os.pathsep.join(
                filter(None, [str(Path(__file__).parents[1]), env.get("PYTHONPATH")])
            )
            log = open(workdir / "agent.log", "ab")  # noqa: SIM115 - closed with the process
            proc = subprocess.Popen(argv, env=env, stdout=log, stderr=log, start_new_session=True)
            log.close()
            agents.append(proc)
            return proc

        yield {
            "platform": platform,
            "ns": (ns_hub, ns_node),
            "hub_if": hub_if,
            "hub_key": hub_key,
            "workdir": workdir,
            "start_agent": start_agent,
            "network_id": network_id,
            "tag": tag,
        }
    finally:
        for proc in agents:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if platform is not None:
            platform.release.set()
            platform.server.shutdown()
            platform.server.server_close()
        kill_processes_mentioning(str(workdir))
        unmount_under(workdir)
        node_if = f"pnag{tag}"
        for ns in (ns_hub, ns_node):
            for line in sh("ip", "-n", ns, "-o", "link", "show", check=False).stdout.splitlines():
                name = line.split(":")[1].strip().split("@")[0]
                if name.startswith((hub_if, node_if)):
                    sh("ip", "-n", ns, "link", "del", name, check=False)
        del_netns(ns_hub)
        del_netns(ns_node)
        for sock in Path("/var/run/wireguard").glob(f"pnag*{tag}*.sock"):
            sock.unlink(missing_ok=True)
        if os.environ.get("POWERNODE_KEEP_LAB_LOGS"):
            print((workdir / "agent.log").read_text(errors="replace"))
        shutil.rmtree(workdir, ignore_errors=True)


def _dockerd_pids(workdir: Path) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes()
                state = (proc / "stat").read_text().rsplit(")", 1)[-1].split()[0]
            except OSError:
                continue
            if (
                state != "Z"
                and os.path.basename(cmdline.split(b"\0")[0]) == b"dockerd"
                and str(workdir).encode() in cmdline
            ):
                pids.append(int(proc.name))
    return pids


def test_agent_in_a_namespace_provisions_survives_a_kill_and_decommissions(lab: dict, test_ca) -> None:
    platform, (ns_hub, _ns_node), workdir = lab["platform"], lab["ns"], lab["workdir"]
    platform.runtime_orders = [{"runtime": "docker", "action": "provision", "host_id": None}]
    # Kill the agent while the platform is answering wants_config: the restarted agent must resume there.
    platform.hold_phase = "wants_config"
    first = lab["start_agent"]()
    _wait(platform.held.is_set, "the agent to post wants_config")
    first.send_signal(signal.SIGKILL)
    first.wait()
    platform.hold_phase = None
    platform.release.set()

    # The hub learns the node's WireGuard key from its heartbeat, as the real platform does.
    node_key = platform.heartbeats()[0]["wireguard_public_key"]
    WireGuardManager(command_prefix=["nsenter", f"--net=/var/run/netns/{ns_hub}"]).bring_up(
        Membership(
            network_id=lab["network_id"],
            interface=lab["hub_if"],
            overlay_address=HUB_OVERLAY,
            prefix=PREFIX,
            hub=HubPeer(node_key, None, (f"{NODE_OVERLAY}/128",)),
            listen_port=51820,
        ),
        private_key_file=workdir / "hub.key",
    )

    second = lab["start_agent"]()
    _wait(lambda: platform.host_status == "connected", "the host to be connected")
    phases = platform.phases()
    assert phases.count("wants_cert") == 1, phases  # resumed with its stored certificate
    assert phases[-1] == "ready"
    assert "failed" not in phases

    # From the hub, over the WireGuard tunnel, the node's dockerd answers with mutual TLS.
    client_key, client_cert = test_ca.client_keypair()
    info = in_netns(
        ns_hub, lambda: mtls_get_version(NODE_OVERLAY, test_ca.pem, client_cert, client_key, workdir)
    )
    assert info["Version"] == platform.handshakes()[-1]["version"]
    (dockerd_pid,) = _dockerd_pids(workdir)
    assert "registry.pnagt.test" in Path(f"/proc/{dockerd_pid}/root/etc/hosts").read_text()

    # An agent restarted after `ready` adopts the running dockerd (pidfile) instead of starting another.
    second.send_signal(signal.SIGKILL)
    second.wait()
    phases_before, beats_before = platform.phases(), len(platform.heartbeats())
    third = lab["start_agent"]()
    _wait(lambda: len(platform.heartbeats()) >= beats_before + 3, "three heartbeats from the restarted agent")
    assert _dockerd_pids(workdir) == [dockerd_pid]
    assert platform.phases() == phases_before
    assert platform.heartbeats()[-1]["runtimes"]["docker"]["phase"] == "ready"

    # Decommission through the agent that adopted dockerd (not its child): it still stops it.
    platform.runtime_orders = [{"runtime": "docker", "action": "decommission", "host_id": platform.host_id}]
    _wait(lambda: platform.host_status == "decommissioned", "the decommission confirmation")
    platform.runtime_orders = []
    _wait(lambda: not _dockerd_pids(workdir), "dockerd to stop")
    assert not (workdir / "daemon.json").exists()
    assert not (workdir / "tls" / "key.pem").exists()
    assert not (workdir / "state" / "docker-key.pem").exists()

    third.send_signal(signal.SIGTERM)
    assert third.wait(timeout=30) == 0
