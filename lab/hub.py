"""The lab's SDWAN hub is the product's (``powernode-agent hub``, agent/powernode_agent/hub), run in the
platform's namespace.

Two ways in, both through the same product code:

- **with the platform** (``make lab``, the tutorial): ``Lab.start_hub`` runs ``powernode-agent hub run``
  with a hub token; the platform decides networks and peers, the hub makes its own keys and reports them.
  :meth:`LabHub.refresh` reads what it applied (``hub status``).
- **without a platform** (the standard world of the engine tests): :meth:`LabHub.add_network` and
  :meth:`LabHub.set_peer` keep a desired state shaped like a sync answer and hand it to the product's
  ``apply``: same interfaces, keys, ``wg syncconf`` and nftables table as a real hub.

The lab adds one thing of its own, outside the product's table: ``table inet pnlab_underlay`` drops
forwarding between lab machines over the underlay cables (a real hub host is not the machines' router).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from powernode_agent.hub import HubConfig, apply, down, status

from lab.netns import Netns
from lab.proc import LabError, run

NFT_TABLE = "powernode_hub"  # the product hub's table (agent/powernode_agent/hub/nft.py)
UNDERLAY_TABLE = "pnlab_underlay"
_LAB_NETWORK_NS = uuid.UUID("5d1f0c8e-4b7a-4f4e-9a53-6c61622d6875")


@dataclass
class HubNetwork:
    """One network as the hub applied it: its interface, public key, prefix and the hub's ::1."""

    name: str
    network_id: str
    prefix: str
    ifname: str
    public_key: str
    listen_port: int
    endpoint: str
    peers: dict[str, str] = field(default_factory=dict)  # public key -> overlay /128

    @property
    def hub_address(self) -> str:
        return str(ipaddress.IPv6Network(self.prefix)[1])


class LabHub:
    """The product hub in the platform namespace; see the module docstring for its two modes."""

    def __init__(self, ns: Netns, *, endpoint_address: str, workdir: Path, interface_prefix: str,
                 allow_ports: list[int]) -> None:
        self.ns = ns
        self.endpoint_address = endpoint_address
        self.workdir = workdir
        self.config = HubConfig(
            state_dir=workdir / "state", interface_prefix=interface_prefix, allow_ports=list(allow_ports),
            command_prefix=ns.prefix_argv(),
        )
        self.networks: dict[str, HubNetwork] = {}
        self._static: dict[str, dict[str, Any]] = {}  # name -> network of the desired state (no platform)
        self._underlay_ready = False

    # --- the lab's own wall -------------------------------------------------------------------------
    def ensure_underlay_firewall(self) -> None:
        """Forwarding on, but never between lab machines over the underlay: only hub interfaces forward
        (and the product table decides between those). Idempotent."""
        if self._underlay_ready:
            return
        hub_ifaces = f'"{self.config.interface_prefix}*"'
        self.ns.run("nft", "-f", "-", input=(
            f"table inet {UNDERLAY_TABLE} {{\n"
            "  chain forward {\n"
            "    type filter hook forward priority filter; policy drop;\n"
            f"    iifname {hub_ifaces} accept\n"
            f"    oifname {hub_ifaces} accept\n"
            '    counter comment "dropped"\n'
            "  }\n"
            "}\n"
        ))
        self.ns.sysctl("net.ipv6.conf.all.forwarding", "1")
        self._underlay_ready = True

    # --- without a platform ---------------------------------------------------------------------------
    def add_network(self, name: str, *, prefix: str, listen_port: int) -> HubNetwork:
        net = ipaddress.IPv6Network(prefix)
        if name in self._static:
            raise LabError(f"hub already has network {name}")
        self._static[name] = {
            "network_id": str(uuid.uuid5(_LAB_NETWORK_NS, name)),
            "name": name,
            "prefix": str(net),
            "hub_address": str(net[1]),
            "listen_port": listen_port,
            "peers": [],
        }
        self._apply_static()
        return self.networks[name]

    def set_peer(self, network: str, *, public_key: str, overlay_address: str) -> None:
        """Admit a spoke: its only AllowedIPs on the hub is its own /128."""
        spec = self._static[network]
        address = ipaddress.IPv6Address(overlay_address)
        if address not in ipaddress.IPv6Network(spec["prefix"]):
            raise LabError(f"{overlay_address} is not in network {network}'s prefix {spec['prefix']}")
        spec["peers"] = [p for p in spec["peers"] if p["public_key"] != public_key]
        spec["peers"].append({"public_key": public_key, "allowed_ips": [f"{address}/128"]})
        self._apply_static()

    def remove_peer(self, network: str, *, public_key: str) -> None:
        spec = self._static[network]
        spec["peers"] = [p for p in spec["peers"] if p["public_key"] != public_key]
        self._apply_static()

    def _apply_static(self) -> None:
        networks = sorted(self._static.values(), key=lambda n: n["name"])
        version = hashlib.sha256(json.dumps(networks, sort_keys=True).encode()).hexdigest()[:32]
        result = apply({"desired_version": version, "networks": networks}, self.config)
        if not result.ok:
            raise LabError(f"the hub did not apply: {result.errors}")
        self.refresh()

    # --- reading what is applied ------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """``powernode-agent hub status --json``, as the product reports it."""
        return status(self.config)

    def refresh(self) -> dict[str, HubNetwork]:
        """``networks`` from the hub's own status (by network name)."""
        networks: dict[str, HubNetwork] = {}
        for entry in self.status()["networks"]:
            if not entry.get("present") or not entry.get("public_key"):
                continue
            port = entry.get("listen_port") or 0
            spec = next((s for s in self._static.values() if s["network_id"] == entry["network_id"]), None)
            prefix = spec["prefix"] if spec else _prefix_of(entry.get("addresses") or [])
            networks[entry["name"]] = HubNetwork(
                name=entry["name"], network_id=entry["network_id"], prefix=prefix, ifname=entry["ifname"],
                public_key=entry["public_key"], listen_port=port, endpoint=f"[{self.endpoint_address}]:{port}",
                peers={p["public_key"]: _first_host(p["allowed_ips"]) for p in entry.get("peers") or []},
            )
        self.networks = networks
        return networks

    def forward_rules(self) -> str:
        return self.ns.run("nft", "list", "chain", "inet", NFT_TABLE, "forward").stdout

    def dropped_packets(self) -> int:
        """Packets the hub's forward chain dropped so far (e.g. from network B towards network A)."""
        return _dropped(self.forward_rules(), "the hub's")

    def underlay_dropped_packets(self) -> int:
        """Packets the lab's underlay wall dropped (lab machines towards each other over the cables)."""
        return _dropped(self.ns.run("nft", "list", "chain", "inet", UNDERLAY_TABLE, "forward").stdout, "the underlay")

    def stop(self) -> None:
        """``powernode-agent hub down`` (interfaces and the product table), then the lab's underlay table."""
        if self.ns.exists():
            left = down(self.config)
            if left:
                raise LabError(f"hub down left {left}")
            if self._underlay_ready:
                run([*self.ns.prefix_argv(), "nft", "delete", "table", "inet", UNDERLAY_TABLE], check=False)
        self._underlay_ready = False
        self.networks.clear()


def _dropped(rules: str, whose: str) -> int:
    for line in rules.splitlines():
        if 'comment "dropped"' in line and "packets" in line:
            return int(line.split("packets", 1)[1].split()[0])
    raise LabError(f"{whose} drop counter is missing")


def _first_host(allowed_ips: list[str]) -> str:
    return str(ipaddress.ip_interface(allowed_ips[0]).ip) if allowed_ips else ""


def _prefix_of(addresses: list[str]) -> str:
    for address in addresses:
        interface = ipaddress.ip_interface(address)
        if interface.version == 6 and not interface.ip.is_link_local:
            return str(interface.network)
    return ""
