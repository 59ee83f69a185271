"""The hub for real: wireguard-go and nftables in namespaces the tests make, spokes on ULA veths."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pnhub_topology import (
    HUB_PORT,
    OTHER_PORT,
    Listener,
    Topology,
    make_topology,
    network,
    ping6,
    tcp_ok,
)

from powernode_agent.hub import apply
from powernode_agent.hub.wg import wireguard_go_pids

pytestmark = pytest.mark.lab


@pytest.fixture
def topo(root_tools) -> Iterator[Topology]:
    root_tools("ip", "nsenter", "wireguard-go", "wg", "nft", "sysctl")
    topology = make_topology()
    try:
        yield topology
    finally:
        topology.cleanup()


def _desired(topo: Topology, version: str, networks: list[dict]) -> dict:
    return {"desired_version": version, "poll_interval_s": 2, "networks": networks}


def _keys(result) -> dict[str, str]:
    return {n["network_id"]: n["public_key"] for n in result.networks}


def _three_spokes(topo: Topology):
    a1 = topo.add_spoke("a1", "a", "fd00:abcd:1::2")
    a2 = topo.add_spoke("a2", "a", "fd00:abcd:1::3")
    b1 = topo.add_spoke("b1", "b", "fd00:abcd:2::2")
    desired = _desired(topo, "v1", [network("a", 1, [a1, a2]), network("b", 2, [b1])])
    result = apply(desired, topo.config)
    assert result.ok, result.errors
    keys = _keys(result)
    for spoke, prefix, nid, port in (
        (a1, "fd00:abcd:1::/64", "a", 51821),
        (a2, "fd00:abcd:1::/64", "a", 51821),
        (b1, "fd00:abcd:2::/64", "b", 51822),
    ):
        topo.connect_spoke(spoke, prefix=prefix, hub_key=keys[nid], listen_port=port)
    return a1, a2, b1, desired, result


def test_spokes_of_a_network_meet_through_the_hub_and_networks_are_walled_off(topo: Topology) -> None:
    a1, a2, b1, desired, result = _three_spokes(topo)
    if_a = next(n["ifname"] for n in result.networks if n["network_id"] == "a")
    if_b = next(n["ifname"] for n in result.networks if n["network_id"] == "b")
    assert topo.in_hub("sysctl", "-n", "net.ipv6.conf.all.forwarding").stdout.strip() == "1"
    assert "fd00:abcd:1::1/64" in topo.in_hub("ip", "-6", "addr", "show", "dev", if_a).stdout

    spoke_a2 = Listener(a2.ns, a2.overlay, [HUB_PORT])
    spoke_b1 = Listener(b1.ns, b1.overlay, [HUB_PORT])
    hub = Listener(topo.hub_ns, "::", [HUB_PORT, OTHER_PORT])
    try:
        # within network A, through the hub
        assert tcp_ok(a1.ns, a2.overlay, HUB_PORT, timeout=5, tries=5)
        assert ping6(a1.ns, a2.overlay)
        # a spoke reaches the hub's own address on its network, on the allowed port only
        assert tcp_ok(a1.ns, "fd00:abcd:1::1", HUB_PORT, tries=3)
        assert not tcp_ok(a1.ns, "fd00:abcd:1::1", OTHER_PORT, timeout=2)
        assert not ping6(a1.ns, "fd00:abcd:1::1", tries=1)
        assert tcp_ok(b1.ns, "fd00:abcd:2::1", HUB_PORT, tries=3)

        # B's spoke misbehaves: a route to A's prefix and A's prefix in its hub peer's AllowedIPs, by hand.
        topo.in_ns(b1.ns, "ip", "-6", "route", "add", "fd00:abcd:1::/64", "dev", b1.ifname)
        hub_b_key = topo.in_ns(b1.ns, "wg", "show", b1.ifname, "peers").stdout.strip()
        topo.in_ns(
            b1.ns,
            "wg",
            "set",
            b1.ifname,
            "peer",
            hub_b_key,
            "allowed-ips",
            "fd00:abcd:2::/64,fd00:abcd:1::/64",
        )
        assert not tcp_ok(b1.ns, a1.overlay, HUB_PORT, timeout=2)
        assert not tcp_ok(b1.ns, a2.overlay, HUB_PORT, timeout=2)
        assert not ping6(b1.ns, a2.overlay, tries=1)
        # nor the hub host's network-A address, on the allowed port or by ping
        assert not tcp_ok(b1.ns, "fd00:abcd:1::1", HUB_PORT, timeout=2)
        assert not ping6(b1.ns, "fd00:abcd:1::1", tries=1)
        # the nft table is what stops it: without the table B's spoke gets in; one reconcile walls it again
        topo.in_hub("nft", "delete", "table", "inet", "powernode_hub")
        assert tcp_ok(b1.ns, "fd00:abcd:1::1", HUB_PORT, tries=3)
        assert "nft: applied (missing)" in apply(desired, topo.config).repairs
        assert not tcp_ok(b1.ns, "fd00:abcd:1::1", HUB_PORT, timeout=2)
        # and A cannot reach B either
        assert not tcp_ok(a1.ns, b1.overlay, HUB_PORT, timeout=2)
        # the underlay (not a hub interface) is not the hub's business: still open
        assert tcp_ok(a1.ns, a1.underlay_hub, OTHER_PORT)
    finally:
        for listener in (spoke_a2, spoke_b1, hub):
            listener.close()
    rules = topo.in_hub("nft", "list", "table", "inet", "powernode_hub").stdout
    assert f'iifname "{if_b}" oifname "{if_b}" accept' in rules
    assert "powernode_hub" not in sh_host_tables()


def sh_host_tables() -> str:
    from pnagent_netns import sh

    return sh("nft", "list", "tables").stdout


def _peer(topo: Topology, ifname: str, key: str) -> dict:
    dump = topo.in_hub("wg", "show", ifname, "dump").stdout.splitlines()[1:]
    for line in dump:
        f = line.split("\t")
        if f[0] == key:
            return {"latest_handshake": int(f[4]), "rx": int(f[5]), "tx": int(f[6])}
    raise AssertionError(f"peer {key} not on {ifname}")


def test_adding_a_peer_does_not_reset_the_other_peers_sessions(topo: Topology) -> None:
    a1 = topo.add_spoke("a1", "a", "fd00:abcd:1::2")
    a2 = topo.add_spoke("a2", "a", "fd00:abcd:1::3")
    result = apply(_desired(topo, "v1", [network("a", 1, [a1])]), topo.config)
    assert result.ok, result.errors
    (net_a,) = result.networks
    topo.connect_spoke(a1, prefix="fd00:abcd:1::/64", hub_key=net_a["public_key"], listen_port=51821)
    hub = Listener(topo.hub_ns, "fd00:abcd:1::1", [HUB_PORT])
    try:
        assert tcp_ok(a1.ns, "fd00:abcd:1::1", HUB_PORT, tries=5)
        before = _peer(topo, net_a["ifname"], a1.public_key)
        assert before["latest_handshake"] > 0 and before["rx"] > 0 and before["tx"] > 0

        result = apply(_desired(topo, "v2", [network("a", 1, [a1, a2])]), topo.config)
        assert result.ok and any("peers converged" in r for r in result.repairs)
        after = _peer(topo, net_a["ifname"], a1.public_key)
        assert after["latest_handshake"] == before["latest_handshake"]
        assert after["rx"] >= before["rx"] and after["tx"] >= before["tx"]
        assert tcp_ok(a1.ns, "fd00:abcd:1::1", HUB_PORT)
        later = _peer(topo, net_a["ifname"], a1.public_key)
        assert later["latest_handshake"] == before["latest_handshake"]  # same session, no new handshake
        assert later["rx"] > before["rx"] and later["tx"] > before["tx"]
        # and removing the new peer leaves the old one alone too
        result = apply(_desired(topo, "v3", [network("a", 1, [a1])]), topo.config)
        assert result.ok
        assert _peer(topo, net_a["ifname"], a1.public_key)["latest_handshake"] == before["latest_handshake"]
    finally:
        hub.close()


def test_drift_made_by_hand_is_repaired_by_one_reconcile(topo: Topology) -> None:
    a1 = topo.add_spoke("a1", "a", "fd00:abcd:1::2")
    desired = _desired(topo, "v1", [network("a", 1, [a1])])
    result = apply(desired, topo.config)
    ifname = result.networks[0]["ifname"]
    table = topo.in_hub("nft", "-j", "list", "table", "inet", "powernode_hub").stdout
    assert apply(desired, topo.config).repairs == []  # nothing to do

    topo.in_hub("wg", "set", ifname, "peer", a1.public_key, "remove")
    repaired = apply(desired, topo.config)
    assert any("peers converged" in r for r in repaired.repairs)
    assert topo.in_hub("wg", "show", ifname, "peers").stdout.split() == [a1.public_key]

    handle = next(
        item["rule"]["handle"]
        for item in json.loads(table)["nftables"]
        if "rule" in item and item["rule"]["chain"] == "forward"
    )
    topo.in_hub("nft", "delete", "rule", "inet", "powernode_hub", "forward", "handle", str(handle))
    assert not topo.hub.local_status()["nft"]["matches"]
    repaired = apply(desired, topo.config)
    assert "nft: applied (changed by hand)" in repaired.repairs
    assert topo.hub.local_status()["nft"]["matches"]

    topo.in_hub("nft", "delete", "table", "inet", "powernode_hub")
    assert "nft: applied (missing)" in apply(desired, topo.config).repairs

    topo.in_hub("ip", "link", "set", ifname, "down")
    repaired = apply(desired, topo.config)
    assert f"{ifname}: set up" in repaired.repairs
    status = topo.hub.local_status()["networks"][0]
    assert status["up"] and status["addresses"] == ["fd00:abcd:1::1/64"]

    topo.in_hub("ip", "-6", "addr", "del", "fd00:abcd:1::1/64", "dev", ifname)
    topo.in_hub("ip", "-6", "addr", "add", "fd00:abcd:1::99/64", "dev", ifname)
    repaired = apply(desired, topo.config)
    assert topo.hub.local_status()["networks"][0]["addresses"] == ["fd00:abcd:1::1/64"]

    topo.in_hub("sysctl", "-w", "net.ipv6.conf.all.forwarding=0")
    apply(desired, topo.config)
    assert topo.in_hub("sysctl", "-n", "net.ipv6.conf.all.forwarding").stdout.strip() == "1"

    # the wireguard-go process dies: its interface goes with it, the reconcile makes both again
    _lose_interface(topo, ifname)
    repaired = apply(desired, topo.config)
    assert f"{ifname}: created" in repaired.repairs
    assert wireguard_go_pids(ifname)
    assert topo.in_hub("wg", "show", ifname, "peers").stdout.split() == [a1.public_key]
    assert topo.in_hub("wg", "show", ifname, "public-key").stdout.strip() == result.networks[0]["public_key"]


def _lose_interface(topo: Topology, ifname: str) -> None:
    """The interface goes away as when its wireguard-go dies; waits for the process to be gone."""
    topo.in_hub("ip", "link", "del", ifname)
    deadline = time.monotonic() + 5
    while wireguard_go_pids(ifname) and time.monotonic() < deadline:
        time.sleep(0.05)


def _hub_opens_a_session(topo: Topology, ifname: str, key: str, *, timeout: float = 8.0) -> bool:
    """Whether the hub's re-added peer ``key`` (handshake 0, counters 0) gets a session: a handshake and its
    answer, while the spoke sends nothing but its keepalives on the session the hub forgot."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        peer = _peer(topo, ifname, key)
        if peer["latest_handshake"] > 0 and peer["rx"] > 0:
            return True
        time.sleep(0.2)
    return False


def test_a_peer_the_hub_lost_gets_its_session_back_from_the_hub_at_once(topo: Topology) -> None:
    """The spoke's session dies with the hub's peer; the spoke alone would notice only at its next rekey
    (up to two minutes). The hub re-adds it at the endpoint last seen and opens the session itself."""
    a1 = topo.add_spoke("a1", "a", "fd00:abcd:1::2")
    a2 = topo.add_spoke("a2", "a", "fd00:abcd:1::3")
    desired = _desired(topo, "v1", [network("a", 1, [a1, a2])])
    result = apply(desired, topo.config)
    (net_a,) = result.networks
    ifname = net_a["ifname"]
    for spoke in (a1, a2):
        topo.connect_spoke(spoke, prefix="fd00:abcd:1::/64", hub_key=net_a["public_key"], listen_port=51821)
    hub = Listener(topo.hub_ns, "fd00:abcd:1::1", [HUB_PORT])
    on_a2 = Listener(a2.ns, a2.overlay, [HUB_PORT])
    try:
        assert tcp_ok(a1.ns, "fd00:abcd:1::1", HUB_PORT, tries=5)
        assert tcp_ok(a1.ns, a2.overlay, HUB_PORT, tries=5)
        apply(desired, topo.config)  # a reconcile sees the endpoints the spokes came from
        state = json.loads((Path(topo.config.state_dir) / "endpoints.json").read_text())
        assert set(state["a"]) == {a1.public_key, a2.public_key}

        # removed by hand: the hub forgets the session and where a1 is
        topo.in_hub("wg", "set", ifname, "peer", a1.public_key, "remove")
        repaired = apply(desired, topo.config)
        assert any("1 re-added at their last endpoint" in r for r in repaired.repairs), repaired.repairs
        assert _hub_opens_a_session(topo, ifname, a1.public_key)
        # both directions work at once (a2 -> a1 goes out through the hub to a1's endpoint)
        assert tcp_ok(a1.ns, "fd00:abcd:1::1", HUB_PORT, timeout=2)
        on_a1 = Listener(a1.ns, a1.overlay, [HUB_PORT])
        try:
            assert tcp_ok(a2.ns, a1.overlay, HUB_PORT, timeout=2)
        finally:
            on_a1.close()

        # the wireguard-go process dies: a new interface and a new hub process (apply makes a new Hub),
        # and every spoke is back without sending anything
        _lose_interface(topo, ifname)
        # and the first reconcile fails to make it again: the endpoints are kept for the one that succeeds
        no_binary = dataclasses.replace(topo.config, wireguard_go_binary="/nonexistent/wireguard-go")
        failed = apply(desired, no_binary)
        assert not failed.ok and ifname in failed.errors[0]
        state = json.loads((Path(topo.config.state_dir) / "endpoints.json").read_text())
        assert set(state["a"]) == {a1.public_key, a2.public_key}
        repaired = apply(desired, topo.config)
        assert f"{ifname}: created" in repaired.repairs
        assert any("2 re-added at their last endpoint" in r for r in repaired.repairs), repaired.repairs
        for spoke in (a1, a2):
            assert _hub_opens_a_session(topo, ifname, spoke.public_key)
        assert tcp_ok(a1.ns, a2.overlay, HUB_PORT, timeout=2)

        # a running hub (one Hub object, as `hub run` keeps) has them in memory: the file is not read again
        running = topo.hub
        running.reconcile(running.parse(desired))
        (Path(topo.config.state_dir) / "endpoints.json").unlink()
        topo.in_hub("wg", "set", ifname, "peer", a2.public_key, "remove")
        repaired = running.reconcile(running.parse(desired))
        assert any("1 re-added at their last endpoint" in r for r in repaired.repairs), repaired.repairs
        assert _hub_opens_a_session(topo, ifname, a2.public_key)

        # a peer no longer desired is forgotten, endpoint included
        apply(_desired(topo, "v2", [network("a", 1, [a2])]), topo.config)
        state = json.loads((Path(topo.config.state_dir) / "endpoints.json").read_text())
        assert set(state["a"]) == {a2.public_key}
    finally:
        hub.close()
        on_a2.close()


def test_down_leaves_nothing_but_the_keys_and_apply_reuses_them(topo: Topology) -> None:
    a1 = topo.add_spoke("a1", "a", "fd00:abcd:1::2")
    desired = _desired(topo, "v1", [network("a", 1, [a1]), network("b", 2, [])])
    first = apply(desired, topo.config)
    assert first.ok and first.new_keys
    ifnames = [n["ifname"] for n in first.networks]
    assert all(wireguard_go_pids(name) for name in ifnames)

    # a network no longer desired loses its interface, not its key
    only_a = _desired(topo, "v2", [network("a", 1, [a1])])
    result = apply(only_a, topo.config)
    assert not topo.in_hub("ip", "link", "show", ifnames[1], check=False).returncode == 0
    assert (Path(topo.config.state_dir) / "keys" / "b.key").exists()
    assert result.new_keys is False

    assert topo.hub.down() == []
    links = topo.in_hub("ip", "-o", "link", "show").stdout
    assert topo.config.interface_prefix not in links
    assert topo.in_hub("nft", "list", "table", "inet", "powernode_hub", check=False).returncode != 0
    assert not any(wireguard_go_pids(name) for name in ifnames)
    keys_dir = Path(topo.config.state_dir) / "keys"
    assert sorted(p.name for p in keys_dir.iterdir()) == ["a.key", "b.key"]
    assert oct(keys_dir.stat().st_mode & 0o777) == "0o700"
    assert all(oct(p.stat().st_mode & 0o777) == "0o600" for p in keys_dir.iterdir())
    assert topo.hub.down() == []  # twice is fine

    again = apply(desired, topo.config)
    assert again.ok and not again.new_keys
    assert _keys(again) == _keys(first)
