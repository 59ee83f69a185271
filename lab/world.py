"""The standard lab world: the tutorial's machines without the platform server and agent yet.

platform (hub for networks A and B, image registry with the busybox httpd image), ``node`` on A with a
dockerd bound to its overlay /128 on 2376 (mutual TLS, certificates from the lab CA), ``ws`` (operator
workstation) on A and ``intr`` (intruder) on B — the intruder's config claims network A's prefix too,
so only the hub and WireGuard's cryptokey routing keep it out. Tests, the bench and ``python -m lab up``
build this same world.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from lab.dockerd import DockerdTls, LabDockerd
from lab.pki import KeyPair, LabCa
from lab.topology import Lab

NETWORK_A = "fd70:6e6c:a::/64"
NETWORK_B = "fd70:6e6c:b::/64"
NODE_OVERLAY = str(ipaddress.IPv6Network(NETWORK_A)[0x10])
WORKSTATION_OVERLAY = str(ipaddress.IPv6Network(NETWORK_A)[0x20])
INTRUDER_OVERLAY = str(ipaddress.IPv6Network(NETWORK_B)[0x20])
DOCKER_PORT = 2376
NODE_BIP = "198.18.0.1/24"


@dataclass
class World:
    lab: Lab
    ca: LabCa
    image_ref: str
    node_dockerd: LabDockerd | None
    platform_client: KeyPair  # the platform's client keypair for the node's dockerd

    @property
    def node_overlay(self) -> str:
        return NODE_OVERLAY

    @property
    def docker_endpoint(self) -> str:
        return f"tcp://[{NODE_OVERLAY}]:{DOCKER_PORT}"


def build_world(lab: Lab, *, with_node_dockerd: bool = True) -> World:
    """Stand up the standard world inside an ``up()`` lab (about 5 s here)."""
    ca = LabCa()
    lab.add_network("A", NETWORK_A)
    lab.add_network("B", NETWORK_B)
    for role in ("node", "ws", "intr"):
        lab.add_host(role)
    lab.join("node", "A", NODE_OVERLAY)
    lab.join("ws", "A", WORKSTATION_OVERLAY)
    lab.join("intr", "B", INTRUDER_OVERLAY, extra_allowed_ips=[NETWORK_A])
    lab.start_registry(ca)
    image_ref = lab.build_image()
    dockerd = None
    if with_node_dockerd:
        server = ca.issue_server("host-lab-node", ips=[NODE_OVERLAY])
        dockerd = lab.dockerd("node", tcp_hosts=[f"tcp://[{NODE_OVERLAY}]:{DOCKER_PORT}"],
                              tls=DockerdTls(ca.ca_pem, server), bip=NODE_BIP)
        dockerd.start()
    return World(lab=lab, ca=ca, image_ref=image_ref, node_dockerd=dockerd,
                 platform_client=ca.issue_client("powernode-platform"))
