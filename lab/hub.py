"""The SDWAN hub in the platform's namespace: one WireGuard interface per network, forwarding only
within a network (WireGuard's cryptokey routing is the first wall, an nftables forward chain the second).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from lab.netns import Netns
from lab.proc import LabError, run
from lab.wireguard import WgInterface, WgKey

NFT_TABLE = "pnlab_hub"
# `fwd` is an nft keyword; the chain is called `forward`.
NFT_CHAIN = "forward"


@dataclass
class HubNetwork:
    """One network on the hub: its interface, key, prefix and the hub's own overlay address (::1)."""

    name: str
    prefix: str
    iface: WgInterface
    key: WgKey
    listen_port: int
    endpoint: str
    peers: dict[str, str] = field(default_factory=dict)  # public key -> overlay /128

    @property
    def ifname(self) -> str:
        return self.iface.ifname

    @property
    def public_key(self) -> str:
        return self.key.public

    @property
    def hub_address(self) -> str:
        return str(ipaddress.IPv6Network(self.prefix)[1])


class Hub:
    """Owns the hub interfaces of every network in the platform namespace."""

    def __init__(self, ns: Netns, *, endpoint_address: str, workdir: Path) -> None:
        self.ns = ns
        self.endpoint_address = endpoint_address
        self.workdir = workdir
        self.networks: dict[str, HubNetwork] = {}
        self._firewall_ready = False

    def ensure_firewall(self) -> None:
        """The forward chain (policy drop), then IPv6 forwarding on; idempotent."""
        if self._firewall_ready:
            return
        ruleset = (
            f"table inet {NFT_TABLE} {{\n"
            f"  chain {NFT_CHAIN} {{\n"
            "    type filter hook forward priority filter; policy drop;\n"
            # Last rule: counts what the policy is about to drop (accept rules are inserted above it).
            '    counter comment "dropped"\n'
            "  }\n"
            "}\n"
        )
        self.ns.run("nft", "-f", "-", input=ruleset)
        self.ns.sysctl("net.ipv6.conf.all.forwarding", "1")
        self._firewall_ready = True

    def add_network(self, name: str, *, prefix: str, ifname: str, listen_port: int,
                    key: WgKey | None = None) -> HubNetwork:
        """Create the network's hub interface with address <prefix>::1 and its forward rule."""
        net = ipaddress.IPv6Network(prefix)
        if not net.subnet_of(ipaddress.IPv6Network("fd00::/8")):
            raise LabError(f"overlay prefixes are IPv6 ULA (fd00::/8), got {prefix}")
        if name in self.networks:
            raise LabError(f"hub already has network {name}")
        self.ensure_firewall()
        key = key or WgKey.generate()
        iface = WgInterface(self.ns, ifname, self.workdir / f"{ifname}.log").start()
        try:
            iface.set_private_key(key, listen_port)
            self.ns.add_address(ifname, f"{net[1]}/{net.prefixlen}")
            self.ns.run("nft", "insert", "rule", "inet", NFT_TABLE, NFT_CHAIN,
                        "iifname", ifname, "oifname", ifname, "accept")
        except Exception:
            iface.stop()
            raise
        hub_net = HubNetwork(
            name=name, prefix=str(net), iface=iface, key=key, listen_port=listen_port,
            endpoint=f"[{self.endpoint_address}]:{listen_port}",
        )
        self.networks[name] = hub_net
        return hub_net

    def set_peer(self, network: str, *, public_key: str, overlay_address: str) -> None:
        """Admit a spoke: its only AllowedIPs on the hub is its own /128."""
        hub_net = self.networks[network]
        address = ipaddress.IPv6Address(overlay_address)
        if address not in ipaddress.IPv6Network(hub_net.prefix):
            raise LabError(f"{overlay_address} is not in network {network}'s prefix {hub_net.prefix}")
        hub_net.iface.set_peer(public_key, allowed_ips=[f"{address}/128"])
        hub_net.peers[public_key] = str(address)

    def remove_peer(self, network: str, *, public_key: str) -> None:
        hub_net = self.networks[network]
        hub_net.iface.remove_peer(public_key)
        hub_net.peers.pop(public_key, None)

    def forward_rules(self) -> str:
        return self.ns.run("nft", "list", "chain", "inet", NFT_TABLE, NFT_CHAIN).stdout

    def dropped_packets(self) -> int:
        """Packets the forward chain dropped so far (e.g. from network B towards network A)."""
        for line in self.forward_rules().splitlines():
            if 'comment "dropped"' in line and "packets" in line:
                return int(line.split("packets", 1)[1].split()[0])
        raise LabError("the hub's drop counter is missing")

    def stop(self) -> None:
        for hub_net in self.networks.values():
            hub_net.iface.stop()
        self.networks.clear()
        if self._firewall_ready and self.ns.exists():
            run([*self.ns.prefix_argv(), "nft", "delete", "table", "inet", NFT_TABLE], check=False)
            self._firewall_ready = False
