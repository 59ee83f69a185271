"""The product hub (``powernode-agent hub run``) in the lab, driven by the platform alone: no command by hand.

One tutorial lab for the module (platform server, hub, node agent, workstation and intruder spokes from
access grants). Two listeners stand in for services: one on the workstation's overlay address (a peer of
network A, reached *through* the hub) and two on the hub host's own network-A address (the platform API
port, which overlay peers may reach, and another port, which they may not). Tests run in file order; the
last ones revoke the workstation and take the hub down.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from lab.proc import wait_for
from lab.topology import SERVER_PORT, agent_argv
from lab.tutorial import INTRUDER, WORKSTATION, Tutorial, config_public_key
from tests.lab.conftest import fresh_prefix

pytestmark = pytest.mark.lab

WS_PORT = 9090  # the workstation's service (a peer of network A)
OTHER_PORT = 9091  # a port on the hub host that overlay peers may not reach
RECONCILE_S = 30  # the product hub's reconcile interval (its default, the maximum)


@dataclass
class Peer:
    public_key: str
    latest_handshake: int
    rx_bytes: int
    tx_bytes: int


def listener(tutorial: Tutorial, role: str, name: str, address: str, port: int) -> None:
    tutorial.lab.spawn(role, name, [sys.executable, "-m", "http.server", "--bind", address, str(port)],
                       sandbox=False)
    wait_for(lambda: tutorial.lab.curl(role, f"http://[{address}]:{port}/", max_time=2).returncode == 0,
             timeout=20, what=f"the {name} listener")


@pytest.fixture(scope="module")
def hubbed(lab_possible: None) -> Iterator[Tutorial]:
    walk = Tutorial(fresh_prefix(), out=lambda line: None)
    try:
        walk.build()
        ws_address = ws_overlay(walk)
        listener(walk, WORKSTATION, "ws-service", ws_address, WS_PORT)
        hub_a = walk.lab.hub.refresh()["lab-a"].hub_address
        listener(walk, "platform", "hub-a-api-port", hub_a, SERVER_PORT)
        listener(walk, "platform", "hub-a-other-port", hub_a, OTHER_PORT)
        yield walk
    finally:
        left = walk.close()
    assert left == {}, f"the hub lab left things behind: {left}"


def ws_overlay(tutorial: Tutorial) -> str:
    grants = tutorial.platform.action("system_sdwan_list_access_grants", {"network_id": tutorial.network_ids["lab-a"]})
    return next(g["overlay_address"] for g in grants["grants"] if g["device_name_hint"] == "ops-laptop")


def reaches(tutorial: Tutorial, role: str, address: str, port: int, *, max_time: float = 3) -> bool:
    return tutorial.lab.curl(role, f"http://[{address}]:{port}/", max_time=max_time).returncode == 0


def hub_peers(tutorial: Tutorial, network: str) -> dict[str, Peer]:
    """``wg show <hub interface> dump`` in the platform namespace: the hub's own view of its peers."""
    ifname = tutorial.lab.hub.refresh()[network].ifname
    lines = tutorial.lab.platform.run("wg", "show", ifname, "dump").stdout.splitlines()[1:]
    peers = {}
    for line in lines:
        fields = line.split("\t")
        peers[fields[0]] = Peer(fields[0], int(fields[4]), int(fields[5]), int(fields[6]))
    return peers


def test_overlay_peers_reach_the_hub_only_on_the_platform_port(hubbed: Tutorial) -> None:
    hub_a = hubbed.lab.hub.networks["lab-a"].hub_address
    assert reaches(hubbed, WORKSTATION, hub_a, SERVER_PORT)
    assert not reaches(hubbed, WORKSTATION, hub_a, OTHER_PORT)


def test_the_intruder_reaches_neither_network_a_nor_the_hubs_network_a_address(hubbed: Tutorial) -> None:
    hub = hubbed.lab.hub
    hub_a = hub.networks["lab-a"].hub_address
    # Its tunnel claims network A's prefix; add a host route by hand as well.
    intruder = hubbed.lab.ns(INTRUDER)
    spoke = hubbed.lab.spokes[(INTRUDER, "B")].ifname
    intruder.run("ip", "-6", "route", "replace", f"{hub_a}/128", "dev", spoke)
    dropped = hub.dropped_packets()
    assert not reaches(hubbed, INTRUDER, ws_overlay(hubbed), WS_PORT)
    assert hub.dropped_packets() > dropped  # died in the hub's forward chain
    assert not reaches(hubbed, INTRUDER, hub_a, SERVER_PORT)
    assert not reaches(hubbed, INTRUDER, hub_a, OTHER_PORT)
    # The same intruder does reach the hub on its own network (B) on the platform port: the wall is per network.
    hub_b = hub.networks["lab-b"].hub_address
    hubbed.lab.spawn("platform", "hub-b-api-port", [sys.executable, "-m", "http.server", "--bind", hub_b,
                                                   str(SERVER_PORT)], sandbox=False)
    wait_for(lambda: reaches(hubbed, INTRUDER, hub_b, SERVER_PORT), timeout=20, what="hub B's platform port")


def test_a_new_grant_is_reachable_through_the_hub_without_touching_it_and_other_sessions_go_on(
    hubbed: Tutorial,
) -> None:
    ws_key = config_public_key_of(hubbed, "ops-laptop")
    assert reaches(hubbed, WORKSTATION, ws_overlay(hubbed), WS_PORT)  # traffic: a handshake and counters
    before = hub_peers(hubbed, "lab-a")[ws_key]
    assert before.latest_handshake > 0 and before.rx_bytes > 0

    grant = hubbed.platform.action(
        "system_sdwan_create_access_grant",
        {"network_id": hubbed.network_ids["lab-a"], "device_name_hint": "second-laptop"},
    )["grant"]
    hubbed.lab.add_host("ws2")
    hubbed.lab.join_with_config("ws2", "A", grant["wireguard_config"])
    # No hub command: the hub learns the peer from the platform on its next sync.
    wait_for(lambda: reaches(hubbed, "ws2", ws_overlay(hubbed), WS_PORT, max_time=1), timeout=30,
             what="the new device through the hub")

    after = hub_peers(hubbed, "lab-a")
    assert config_public_key(grant["wireguard_config"]) in after
    # The workstation's session was not reset by the change: same or later handshake, counters grew on.
    assert after[ws_key].latest_handshake >= before.latest_handshake
    assert after[ws_key].rx_bytes >= before.rx_bytes and after[ws_key].tx_bytes >= before.tx_bytes


def test_the_platform_shows_the_tunnels_the_hub_reports(hubbed: Tutorial) -> None:
    network_id = hubbed.network_ids["lab-a"]

    def workstation_up() -> dict | None:
        assert reaches(hubbed, WORKSTATION, ws_overlay(hubbed), WS_PORT)
        peers = hubbed.platform.action("system_sdwan_list_peers", {"network_id": network_id})["peers"]
        mine = [p for p in peers if p["overlay_address"] == ws_overlay(hubbed)]
        return mine[0] if mine and mine[0]["tunnel"] == "up" and mine[0]["last_handshake_at"] else None

    peer = wait_for(workstation_up, timeout=30, what="the workstation's tunnel shown as up")
    assert peer["rx_bytes"] > 0


def test_drift_made_by_hand_is_repaired_within_one_reconcile(hubbed: Tutorial) -> None:
    platform = hubbed.lab.platform
    network = hubbed.lab.hub.refresh()["lab-a"]
    ws_key = config_public_key_of(hubbed, "ops-laptop")
    platform.run("wg", "set", network.ifname, "peer", ws_key, "remove")
    handle = next(
        line.rsplit("# handle", 1)[1].strip()
        for line in platform.run("nft", "-a", "list", "chain", "inet", "powernode_hub", "forward").stdout.splitlines()
        if f'iifname "{network.ifname}" oifname "{network.ifname}" accept' in line
    )
    platform.run("nft", "delete", "rule", "inet", "powernode_hub", "forward", "handle", handle)
    assert ws_key not in hub_peers(hubbed, "lab-a")
    assert f'iifname "{network.ifname}" oifname "{network.ifname}" accept' not in hubbed.lab.hub.forward_rules()

    wait_for(lambda: ws_key in hub_peers(hubbed, "lab-a"), timeout=RECONCILE_S + 15, what="the peer back")
    wait_for(lambda: f'iifname "{network.ifname}" oifname "{network.ifname}" accept' in hubbed.lab.hub.forward_rules(),
             timeout=RECONCILE_S + 15, what="the rule back")
    # The workstation's session died with the hub's peer, and the workstation alone would notice only at its
    # next rekey (up to two minutes): the hub re-adds it at its last endpoint and opens a session itself.
    wait_for(lambda: hub_peers(hubbed, "lab-a")[ws_key].latest_handshake > 0
             and hub_peers(hubbed, "lab-a")[ws_key].rx_bytes > 0, timeout=10, what="the hub's new session")
    assert reaches(hubbed, "ws2", ws_overlay(hubbed), WS_PORT)  # traffic through the hub again, both ways
    assert reaches(hubbed, WORKSTATION, network.hub_address, SERVER_PORT)


def test_revoking_a_grant_cuts_that_device_off(hubbed: Tutorial) -> None:
    network_id = hubbed.network_ids["lab-a"]
    grants = hubbed.platform.action("system_sdwan_list_access_grants", {"network_id": network_id})["grants"]
    grant = next(g for g in grants if g["device_name_hint"] == "ops-laptop")
    assert reaches(hubbed, WORKSTATION, hubbed.lab.hub.networks["lab-a"].hub_address, SERVER_PORT)

    hubbed.platform.action("system_sdwan_revoke_access_grant", {"grant_id": grant["id"]})
    wait_for(lambda: grant["public_key"] not in hub_peers(hubbed, "lab-a"), timeout=30,
             what="the hub to drop the revoked device")
    assert not reaches(hubbed, WORKSTATION, hubbed.lab.hub.networks["lab-a"].hub_address, SERVER_PORT)
    # The other device of the network is untouched.
    assert reaches(hubbed, "ws2", hubbed.lab.hub.networks["lab-a"].hub_address, SERVER_PORT)


def test_hub_down_leaves_no_interface_no_table_and_no_process(hubbed: Tutorial) -> None:
    lab = hubbed.lab
    ifnames = [n.ifname for n in lab.hub.refresh().values()]
    assert ifnames
    assert lab.stop_process("hub") == 0  # SIGTERM: the tunnels stay up, only the loop ends
    assert all(lab.platform.run("ip", "link", "show", name, check=False).returncode == 0 for name in ifnames)

    down = lab.platform.run(*agent_argv(), "hub", "down", "--state-dir", str(lab.hub.config.state_dir),
                            "--interface-prefix", lab.hub.config.interface_prefix, check=False)
    assert down.returncode == 0, down.stderr
    for name in ifnames:
        assert lab.platform.run("ip", "link", "show", name, check=False).returncode != 0
    assert lab.platform.run("nft", "list", "table", "inet", "powernode_hub", check=False).returncode != 0
    wireguard_go = [pid for pid in lab.platform.pids() if _cmdline(pid).startswith("wireguard-go")]
    assert wireguard_go == []
    # The lab's own underlay wall is not the hub's: it is still there.
    assert lab.platform.run("nft", "list", "table", "inet", "pnlab_underlay", check=False).returncode == 0


def config_public_key_of(tutorial: Tutorial, device: str) -> str:
    grants = tutorial.platform.action("system_sdwan_list_access_grants", {"network_id": tutorial.network_ids["lab-a"]})
    return next(g["public_key"] for g in grants["grants"] if g["device_name_hint"] == device)


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""
