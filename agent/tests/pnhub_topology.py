"""A hub namespace and spoke namespaces (one per spoke) on ULA veths, for the hub's real tests and bench."""

from __future__ import annotations

import os
import secrets
import socket
import struct
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from pnagent_netns import add_netns, del_netns, in_netns, kill_processes_mentioning, sh

from powernode_agent.hub import HubConfig
from powernode_agent.hub.runner import Hub
from powernode_agent.wireguard import (
    HubPeer,
    Membership,
    WireGuardManager,
    generate_private_key,
    public_key_for,
)

HUB_PORT = 8000  # the allowed port (a listener in the hub namespace)
OTHER_PORT = 8022  # not allowed


@dataclass
class Spoke:
    name: str
    ns: str
    ifname: str
    network: str  # "a" / "b"
    overlay: str
    underlay_hub: str
    key_file: Path
    public_key: str


@dataclass
class Topology:
    tag: str
    hub_ns: str
    workdir: Path
    config: HubConfig
    spokes: dict[str, Spoke] = field(default_factory=dict)
    namespaces: list[str] = field(default_factory=list)

    @property
    def hub(self) -> Hub:
        return Hub(self.config)

    def in_hub(self, *args: str, check: bool = True):
        return sh("nsenter", f"--net=/var/run/netns/{self.hub_ns}", *args, check=check)

    def in_ns(self, ns: str, *args: str, check: bool = True):
        return sh("nsenter", f"--net=/var/run/netns/{ns}", *args, check=check)

    def add_spoke(self, name: str, network: str, overlay: str) -> Spoke:
        index = len(self.spokes) + 1
        ns = f"pnhub-{name}-{self.tag}"
        add_netns(ns)
        self.namespaces.append(ns)
        hub_end, spoke_end = f"pvh{self.tag}{index}", f"pvs{self.tag}{index}"
        sh(
            "ip",
            "link",
            "add",
            hub_end,
            "netns",
            self.hub_ns,
            "type",
            "veth",
            "peer",
            "name",
            spoke_end,
            "netns",
            ns,
        )
        sh("ip", "-n", self.hub_ns, "-6", "addr", "add", f"fd00:99:{index}::1/64", "dev", hub_end, "nodad")
        sh("ip", "-n", ns, "-6", "addr", "add", f"fd00:99:{index}::2/64", "dev", spoke_end, "nodad")
        sh("ip", "-n", self.hub_ns, "link", "set", hub_end, "up")
        sh("ip", "-n", ns, "link", "set", spoke_end, "up")
        key = generate_private_key()
        key_file = self.workdir / f"{name}.key"
        key_file.write_text(key + "\n")
        os.chmod(key_file, 0o600)
        spoke = Spoke(
            name,
            ns,
            f"pns{self.tag}{index}",
            network,
            overlay,
            f"fd00:99:{index}::1",
            key_file,
            public_key_for(key),
        )
        self.spokes[name] = spoke
        return spoke

    def connect_spoke(self, spoke: Spoke, *, prefix: str, hub_key: str, listen_port: int) -> None:
        """The spoke's side, as the node agent makes it: the hub as its only peer, AllowedIPs = prefix."""
        manager = WireGuardManager(command_prefix=["nsenter", f"--net=/var/run/netns/{spoke.ns}"])
        manager.bring_up(
            Membership(
                network_id=spoke.network,
                interface=spoke.ifname,
                overlay_address=spoke.overlay,
                prefix=prefix,
                hub=HubPeer(hub_key, f"[{spoke.underlay_hub}]:{listen_port}", (prefix,)),
            ),
            private_key_file=spoke.key_file,
        )

    def cleanup(self) -> None:
        try:
            self.hub.down()
        except Exception:  # noqa: BLE001 - cleanup goes on whatever happened
            pass
        for ns in [*self.namespaces, self.hub_ns]:
            del_netns(ns)
        kill_processes_mentioning(f"wireguard-go pns{self.tag}")
        kill_processes_mentioning(f"wireguard-go {self.config.interface_prefix}")
        for sock in Path("/var/run/wireguard").glob(f"*{self.tag}*.sock"):
            sock.unlink(missing_ok=True)
        for sock in Path("/var/run/wireguard").glob(f"{self.config.interface_prefix}*.sock"):
            sock.unlink(missing_ok=True)
        for path in sorted(self.workdir.rglob("*"), reverse=True):
            path.rmdir() if path.is_dir() else path.unlink()
        self.workdir.rmdir()


def make_topology() -> Topology:
    tag = secrets.token_hex(2)
    hub_ns = f"pnhub-h-{tag}"
    workdir = Path(tempfile.mkdtemp(prefix="pnhub-"))
    add_netns(hub_ns)
    config = HubConfig(
        state_dir=workdir / "state",
        interface_prefix=f"pnh{tag}",
        allow_ports=[HUB_PORT],
        command_prefix=["nsenter", f"--net=/var/run/netns/{hub_ns}"],
    )
    return Topology(tag=tag, hub_ns=hub_ns, workdir=workdir, config=config, namespaces=[])


def network(network_id: str, index: int, peers: list[Spoke], *, port: int | None = None) -> dict:
    return {
        "network_id": network_id,
        "name": f"net-{network_id}",
        "prefix": f"fd00:abcd:{index}::/64",
        "hub_address": f"fd00:abcd:{index}::1",
        "listen_port": port or 51820 + index,
        "public_key": "",
        "peers": [{"public_key": s.public_key, "allowed_ips": [f"{s.overlay}/128"]} for s in peers],
    }


class Listener:
    """TCP listeners in a namespace that answer one line upper-cased, until closed."""

    def __init__(self, ns: str, address: str, ports: list[int]) -> None:
        self.socks = in_netns(
            ns, lambda: [socket.create_server((address, p), family=socket.AF_INET6) for p in ports]
        )
        self.stop = False
        self.threads = [threading.Thread(target=self._serve, args=(s,), daemon=True) for s in self.socks]
        for t in self.threads:
            t.start()

    def _serve(self, sock: socket.socket) -> None:
        sock.settimeout(0.2)
        while not self.stop:
            try:
                conn, _ = sock.accept()
            except (TimeoutError, OSError):
                continue
            with conn:
                try:
                    conn.settimeout(5)
                    conn.sendall(conn.recv(64).upper())
                except OSError:
                    pass

    def close(self) -> None:
        self.stop = True
        for t in self.threads:
            t.join()
        for s in self.socks:
            s.close()


def tcp_ok(ns: str, address: str, port: int, *, timeout: float = 3.0, tries: int = 1) -> bool:
    def attempt() -> bool:
        for _ in range(tries):
            try:
                with socket.create_connection((address, port), timeout=timeout) as conn:
                    conn.sendall(b"hello")
                    return conn.recv(64) == b"HELLO"
            except OSError:
                time.sleep(0.2)
        return False

    return in_netns(ns, attempt)


def ping6(ns: str, address: str, *, tries: int = 3, timeout: float = 1.5) -> bool:
    """ICMPv6 echo from inside ``ns`` through a raw socket (iputils-ping is not installed everywhere)."""

    def attempt() -> bool:
        ident = secrets.randbits(16)
        with socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6) as sock:
            sock.settimeout(timeout)
            for seq in range(tries):
                # the kernel fills in the ICMPv6 checksum on raw ICMPv6 sockets
                sock.sendto(struct.pack("!BBHHH", 128, 0, 0, ident, seq) + b"pnhub", (address, 0))
                deadline = time.monotonic() + timeout
                while time.monotonic() < deadline:
                    try:
                        data, _ = sock.recvfrom(1500)
                    except TimeoutError:
                        break
                    if len(data) >= 8 and data[0] == 129 and struct.unpack("!H", data[4:6])[0] == ident:
                        return True
        return False

    return in_netns(ns, attempt)
