"""Real WireGuard through WireGuardManager: two namespaces on a ULA veth underlay, ping6 over the overlay."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pnagent_netns import add_netns, del_netns, in_netns, kill_processes_mentioning, sh

from powernode_agent.wireguard import (
    HubPeer,
    Membership,
    WireGuardManager,
    generate_private_key,
    public_key_for,
)

pytestmark = pytest.mark.lab

PREFIX = "fd00:aa:1::/64"


@pytest.fixture
def two_namespaces(root_tools) -> Iterator[dict]:
    root_tools("ip", "nsenter", "wireguard-go", "wg")
    tag = secrets.token_hex(3)
    ns_a, ns_b = f"pnagt-wa-{tag}", f"pnagt-wb-{tag}"
    # wireguard-go's control sockets are machine-wide: names must be unique across namespaces.
    if_a, if_b = f"pwa{tag}", f"pwb{tag}"
    workdir = Path(tempfile.mkdtemp(prefix="pnagt-w-"))
    add_netns(ns_a)
    add_netns(ns_b)
    try:
        sh(
            "ip",
            "link",
            "add",
            f"pva{tag}",
            "netns",
            ns_a,
            "type",
            "veth",
            "peer",
            "name",
            f"pvb{tag}",
            "netns",
            ns_b,
        )
        sh("ip", "-n", ns_a, "-6", "addr", "add", "fd00:77:1::1/64", "dev", f"pva{tag}", "nodad")
        sh("ip", "-n", ns_b, "-6", "addr", "add", "fd00:77:1::2/64", "dev", f"pvb{tag}", "nodad")
        sh("ip", "-n", ns_a, "link", "set", f"pva{tag}", "up")
        sh("ip", "-n", ns_b, "link", "set", f"pvb{tag}", "up")
        keys = {}
        for side in ("a", "b"):
            key = generate_private_key()
            path = workdir / f"{side}.key"
            path.write_text(key + "\n")
            os.chmod(path, 0o600)
            keys[side] = (path, public_key_for(key))
        yield {"ns": (ns_a, ns_b), "ifs": (if_a, if_b), "keys": keys, "workdir": workdir}
    finally:
        for ns, ifname in ((ns_a, if_a), (ns_b, if_b)):
            sh("ip", "-n", ns, "link", "del", ifname, check=False)
        kill_processes_mentioning(f"wireguard-go pwa{tag}")
        kill_processes_mentioning(f"wireguard-go pwb{tag}")
        del_netns(ns_a)
        del_netns(ns_b)
        for ifname in (if_a, if_b):
            Path(f"/var/run/wireguard/{ifname}.sock").unlink(missing_ok=True)
        for child in workdir.iterdir():
            child.unlink()
        workdir.rmdir()


def _tcp_round_trip(ns_server: str, ns_client: str, address: str) -> bytes:
    """A TCP exchange from ``ns_client`` to [address] in ``ns_server``, over whatever routes they have."""
    listener = in_netns(ns_server, lambda: socket.create_server((address, 0), family=socket.AF_INET6))
    port = listener.getsockname()[1]

    def serve() -> None:
        with listener:
            listener.settimeout(30)
            conn, _ = listener.accept()
            with conn:
                conn.sendall(conn.recv(64).upper())

    server = threading.Thread(target=serve)
    server.start()

    def client() -> bytes:
        # The first packet waits for the WireGuard handshake; connect retries cover that.
        with socket.create_connection((address, port), timeout=20) as conn:
            conn.sendall(b"over the overlay")
            return conn.recv(64)

    try:
        return in_netns(ns_client, client)
    finally:
        server.join()


def _ping(ns: str, address: str) -> bool:
    """ping6 from inside ``ns``; a few tries because the first packet waits for the WireGuard handshake."""
    for _ in range(10):
        result = subprocess.run(
            ["nsenter", f"--net=/var/run/netns/{ns}", "ping", "-6", "-c", "1", "-W", "2", address],
            capture_output=True,
            text=True,
        )
        if result.returncode == 0:
            return True
    return False


def test_two_nodes_reach_each_other_over_their_overlay_128s(two_namespaces: dict) -> None:
    (ns_a, ns_b), (if_a, if_b), keys = two_namespaces["ns"], two_namespaces["ifs"], two_namespaces["keys"]
    wg_a = WireGuardManager(backend="auto", command_prefix=["nsenter", f"--net=/var/run/netns/{ns_a}"])
    wg_b = WireGuardManager(backend="auto", command_prefix=["nsenter", f"--net=/var/run/netns/{ns_b}"])
    # Each side's "hub" is the other node: the module's spoke setup, mirrored.
    member_a = Membership(
        network_id="net",
        interface=if_a,
        overlay_address="fd00:aa:1::1",
        prefix=PREFIX,
        hub=HubPeer(keys["b"][1], "[fd00:77:1::2]:51902", (PREFIX,)),
        listen_port=51901,
    )
    member_b = Membership(
        network_id="net",
        interface=if_b,
        overlay_address="fd00:aa:1::2",
        prefix=PREFIX,
        hub=HubPeer(keys["a"][1], "[fd00:77:1::1]:51901", (PREFIX,)),
        listen_port=51902,
    )
    wg_a.bring_up(member_a, private_key_file=keys["a"][0])
    wg_b.bring_up(member_b, private_key_file=keys["b"][0])
    # Idempotent: applying the same membership again changes nothing and fails nothing.
    wg_a.bring_up(member_a, private_key_file=keys["a"][0])

    assert _tcp_round_trip(ns_b, ns_a, "fd00:aa:1::2") == b"OVER THE OVERLAY"
    if shutil.which("ping"):  # iputils-ping is not a dependency of the lab; TCP above is the proof
        assert _ping(ns_a, "fd00:aa:1::2")
        assert _ping(ns_b, "fd00:aa:1::1")

    in_a = ["nsenter", f"--net=/var/run/netns/{ns_a}"]
    allowed = sh(*in_a, "wg", "show", if_a, "allowed-ips").stdout.split()
    assert allowed == [keys["b"][1], PREFIX]
    assert sh(*in_a, "wg", "show", if_a, "persistent-keepalive").stdout.split() == [keys["b"][1], "25"]
    addrs = sh(*in_a, "ip", "-6", "-o", "addr", "show", "dev", if_a, "scope", "global").stdout
    assert addrs.count("inet6") == 1 and "fd00:aa:1::1/128" in addrs
    assert f"{PREFIX.split('/')[0]}/64 dev {if_a}" in sh(*in_a, "ip", "-6", "route", "show").stdout
    # The route and address are in A's namespace only, not the machine's.
    assert if_a not in sh("ip", "link", "show").stdout

    # A new hub key replaces the old peer instead of adding a second one.
    new_hub = public_key_for(generate_private_key())
    wg_a.bring_up(
        Membership(
            network_id="net",
            interface=if_a,
            overlay_address="fd00:aa:1::1",
            prefix=PREFIX,
            hub=HubPeer(new_hub, "[fd00:77:1::2]:51902", (PREFIX,)),
        ),
        private_key_file=keys["a"][0],
    )
    assert sh(*in_a, "wg", "show", if_a, "peers").stdout.split() == [new_hub]

    assert wg_a.tear_down(if_a) is True
    assert wg_a.exists(if_a) is False
    assert wg_a.tear_down(if_a) is False
    # wireguard-go exits once its TUN device is gone, taking its control socket with it.
    deadline = time.monotonic() + 10
    while Path(f"/var/run/wireguard/{if_a}.sock").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Path(f"/var/run/wireguard/{if_a}.sock").exists()
