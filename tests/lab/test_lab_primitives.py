"""The lab's own building blocks: hub firewall, registry TLS, spoke configs and teardown after a crash."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lab.pki import LabCa
from lab.teardown import down, leftovers, stale_prefixes
from lab.wireguard import parse_wg_quick
from lab.world import NETWORK_A, NETWORK_B, World
from tests.lab.conftest import TEST_PREFIX_PATTERN, fresh_prefix

REPO = Path(__file__).resolve().parents[2]


def test_wg_quick_config_parsing() -> None:
    cfg = parse_wg_quick(textwrap.dedent("""\
        [Interface]
        PrivateKey = aaaa
        Address = fd00:1::5/128  # the grant's overlay address
        MTU = 1380

        [Peer]
        PublicKey = bbbb
        Endpoint = [fd00:ff::1]:51820
        AllowedIPs = fd00:1::/64, fd00:2::/64
        """))
    assert cfg.addresses == ["fd00:1::5/128"]
    assert cfg.peer_allowed_ips == ["fd00:1::/64", "fd00:2::/64"]
    assert cfg.mtu == 1380


@pytest.mark.lab
def test_hub_forwards_only_within_a_network(world: World) -> None:
    rules = world.lab.hub.forward_rules()
    assert "policy drop" in rules
    for name in ("A", "B"):
        ifname = world.lab.hub.networks[name].ifname
        assert f'iifname "{ifname}" oifname "{ifname}" accept' in rules
    assert world.lab.platform.run("sysctl", "-n", "net.ipv6.conf.all.forwarding").stdout.strip() == "1"
    assert world.lab.hub.networks["A"].prefix == NETWORK_A
    assert world.lab.hub.networks["B"].prefix == NETWORK_B


@pytest.mark.lab
def test_registry_serves_tls_from_the_lab_ca_only(world: World) -> None:
    registry = world.lab.registry
    # By name, as dockerd reaches it (image references cannot hold IPv6 literals).
    resolve = f"{registry.name}:{registry.port}:[{world.lab.service_address}]"
    url = f"https://{registry.name}:{registry.port}/v2/"

    def curl_with(ca_pem: str | None):
        argv = ["curl", "-sS", "--max-time", "5", "--resolve", resolve]
        if ca_pem:
            path = world.lab.dir / "curl" / "registry-ca.pem"
            path.parent.mkdir(exist_ok=True)
            path.write_text(ca_pem)
            argv += ["--cacert", str(path)]
        return world.lab.hosts["node"].ns.run(*argv, url, check=False)

    trusted = curl_with(world.ca.ca_pem)
    assert trusted.returncode == 0, trusted.stderr
    assert trusted.stdout.strip() == "{}"  # no auth: Debian's shipped htpasswd config is not used
    assert curl_with(LabCa("another CA").ca_pem).returncode == 60  # certificate not trusted
    assert curl_with(None).returncode == 60  # the system bundle does not know the lab CA


CRASHING_LAB = """
import os, sys, docker
from lab.topology import Lab
from lab.pki import LabCa
prefix = sys.argv[1]
lab = Lab(prefix).up()
lab.add_network("A", "fd70:6e6c:c::/64")
lab.add_host("node")
lab.join("node", "A", "fd70:6e6c:c::10")
lab.start_registry(LabCa())
ref = lab.build_image()
dockerd = lab.dockerd("node", unix_socket=True)
dockerd.start()
api = docker.APIClient(base_url=f"unix://{dockerd.socket_path}", version="1.41")
api.pull(ref)
api.start(api.create_container(ref)["Id"])
print("UP", flush=True)
os.kill(os.getpid(), 9)  # no cleanup at all
"""


@pytest.mark.lab
def test_down_removes_everything_after_a_crash(lab_possible: None) -> None:
    prefix = fresh_prefix()
    try:
        proc = subprocess.run([sys.executable, "-c", CRASHING_LAB, prefix], cwd=REPO, capture_output=True,
                              text=True, timeout=180)
        assert "UP" in proc.stdout, proc.stderr[-3000:]
        left = leftovers(prefix)
        assert left["netns"] and left["processes"] and left["wireguard_sockets"] and left["files"]
        assert left["cgroups"]  # the container's
        assert prefix in stale_prefixes(TEST_PREFIX_PATTERN)  # its owner is dead: a later run sweeps it
    finally:
        remaining = down(prefix)
    assert remaining == {}
    assert all(not v for v in leftovers(prefix).values())


@pytest.mark.lab
def test_spawned_process_sees_the_lab_names_and_a_private_etc_docker(world: World) -> None:
    lab = world.lab
    script = ("getent hosts registry.powernode.internal platform.powernode.internal; "
              "ls /etc/docker/certs.d; echo written > /etc/docker/from-agent")
    process = lab.spawn("node", "sandbox-probe", ["sh", "-c", script])
    assert process.wait(timeout=30) == 0
    log = (lab.dir / "logs" / "sandbox-probe.log").read_text()
    assert f"{lab.service_address}  registry.powernode.internal" in log or \
        f"{lab.service_address} registry.powernode.internal" in log
    assert "platform.powernode.internal" in log
    assert "registry.powernode.internal:5000" in log
    # What the process wrote under /etc/docker landed in the lab, not on the machine.
    assert (lab.dir / "etc-docker-sandbox-probe" / "from-agent").read_text() == "written\n"
    assert not Path("/etc/docker/from-agent").exists()
    assert lab.stop_process("sandbox-probe") == 0


@pytest.mark.lab
def test_hub_drops_network_b_traffic_towards_network_a(world: World) -> None:
    hub = world.lab.hub
    before = hub.dropped_packets()
    # The intruder's config claims A's prefix, so WireGuard hands the packets to the hub, where they stop.
    probe = world.lab.curl("intr", f"http://[{world.node_overlay}]:2376/", max_time=2)
    assert probe.returncode != 0
    after_intruder = hub.dropped_packets()
    assert after_intruder > before
    allowed = world.lab.curl("ws", f"https://[{world.node_overlay}]:2376/_ping", ca_pem=world.ca.ca_pem,
                             cert_pem=world.platform_client.cert_pem, key_pem=world.platform_client.key_pem)
    assert allowed.returncode == 0 and allowed.stdout == "OK"
    assert hub.dropped_packets() == after_intruder  # traffic inside network A is not dropped


@pytest.mark.lab
def test_cli_up_leaves_a_working_world_and_down_removes_it(lab_possible: None) -> None:
    prefix = fresh_prefix()

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "lab", "--prefix", prefix, *args], cwd=REPO,
                              capture_output=True, text=True, timeout=180)

    try:
        up = cli("up")
        assert up.returncode == 0, up.stderr[-3000:]
        world = json.loads((Path(f"/tmp/{prefix}lab") / "world.json").read_text())
        certs = world["platform_client_cert"]
        # The world outlives the command: the Docker CLI's equivalent over mTLS from the workstation works.
        ping = subprocess.run(
            ["nsenter", f"--net=/var/run/netns/{world['namespaces']['ws']}", "curl", "-sS", "--max-time", "5",
             "--cacert", certs["ca"], "--cert", certs["cert"], "--key", certs["key"],
             f"https://[{world['node_overlay']}]:2376/_ping"], capture_output=True, text=True, timeout=30)
        assert ping.stdout == "OK", ping.stderr
        assert cli("up").returncode == 1  # refuses to stand up a second one over the first
        assert json.loads(cli("status").stdout)["present"]["netns"]
        down_run = cli("down")
        assert down_run.returncode == 0, down_run.stderr
    finally:
        down(prefix)
    assert all(not v for v in leftovers(prefix).values())


@pytest.mark.lab
def test_hosts_do_not_reach_each_other_over_the_underlay(world: World) -> None:
    lab = world.lab
    ws = lab.hosts["ws"]

    def ping(address: str) -> int:
        return ws.ns.run("busybox", "ping", "-c", "1", "-W", "2", address, check=False).returncode

    assert ping(ws.platform_side_address) == 0  # the cable to the platform works
    assert ping(lab.service_address) == 0
    before = lab.hub.underlay_dropped_packets()
    assert ping(lab.hosts["node"].underlay_address) != 0
    assert lab.hub.underlay_dropped_packets() > before
