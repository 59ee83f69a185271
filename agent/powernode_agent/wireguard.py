"""WireGuard on the node: the X25519 instance key, one interface per SDWAN membership, peered to the hub."""

from __future__ import annotations

import base64
import ipaddress
import json
import logging
import os
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

log = logging.getLogger(__name__)

PERSISTENT_KEEPALIVE_S = 25
MAX_IFNAME_LEN = 15


class WireGuardError(Exception):
    """A WireGuard or iproute2 command failed; the message carries its stderr."""


def generate_private_key() -> str:
    """A new X25519 private key in WireGuard's base64 form."""
    raw = X25519PrivateKey.generate().private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return base64.b64encode(raw).decode()


def public_key_for(private_key_b64: str) -> str:
    """The base64 public key that goes to the platform (the private key never does)."""
    key = X25519PrivateKey.from_private_bytes(base64.b64decode(private_key_b64.strip()))
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def interface_name(prefix: str, network_id: str) -> str:
    """Interface for one network: ``prefix`` + hex digits of the network id, within IFNAMSIZ.

    wireguard-go's control sockets live in one machine-wide directory, so the name must be unique across
    network namespaces too: nodes sharing a machine (the lab) use distinct prefixes.
    """
    digits = "".join(c for c in network_id.lower() if c in "0123456789abcdef")
    room = min(8, MAX_IFNAME_LEN - len(prefix))
    if room < 6 or len(digits) < room:
        raise WireGuardError(
            f"cannot make an interface name from prefix {prefix!r} and network {network_id!r}"
        )
    # The last digits: network ids are UUIDv7, whose leading digits are a timestamp that stays the same
    # for about a minute, so two networks made in the same minute would get one name.
    return prefix + digits[-room:]


@dataclass(frozen=True)
class HubPeer:
    """The network's hub as seen from a node: the only WireGuard peer a node has on that network."""

    public_key: str
    endpoint: str | None
    allowed_ips: tuple[str, ...]


@dataclass(frozen=True)
class Membership:
    """One SDWAN network this node belongs to, as the heartbeat describes it."""

    network_id: str
    interface: str
    overlay_address: str
    prefix: str
    hub: HubPeer | None = None
    listen_port: int | None = None
    extra: dict = field(default_factory=dict, compare=False, hash=False)


Runner = Callable[..., subprocess.CompletedProcess]


class WireGuardManager:
    """Brings interfaces up and down; every call is idempotent so a heartbeat can simply re-apply it.

    ``command_prefix`` runs every command through e.g. ``nsenter --net=/var/run/netns/NODE`` (tests); an agent
    already living in the node's namespace leaves it empty.
    """

    def __init__(
        self,
        *,
        backend: str = "auto",
        wireguard_go: str = "wireguard-go",
        command_prefix: Sequence[str] = (),
        runner: Runner = subprocess.run,
    ) -> None:
        self.backend = backend
        self.wireguard_go = wireguard_go
        self.command_prefix = list(command_prefix)
        self._run = runner

    def _cmd(
        self, *args: str, check: bool = True, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess:
        argv = [*self.command_prefix, *args]
        result = self._run(argv, capture_output=True, text=True, env=env)
        if check and result.returncode != 0:
            raise WireGuardError(f"{' '.join(args)} failed: {(result.stderr or result.stdout).strip()}")
        return result

    def exists(self, ifname: str) -> bool:
        return self._cmd("ip", "link", "show", "dev", ifname, check=False).returncode == 0

    def create(self, ifname: str) -> None:
        """Make a WireGuard link: kernel when `ip link add type wireguard` works (auto), else wireguard-go."""
        if self.backend in ("auto", "kernel"):
            result = self._cmd("ip", "link", "add", "dev", ifname, "type", "wireguard", check=False)
            if result.returncode == 0:
                log.info("wireguard: created %s (kernel)", ifname)
                return
            if self.backend == "kernel":
                raise WireGuardError(f"kernel WireGuard unavailable for {ifname}: {result.stderr.strip()}")
        env = dict(os.environ, WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD="1")
        # wireguard-go opens the TUN device, then daemonizes; the link exists once it returns. `setsid -w`:
        # in a session of its own, so a signal to our process group (a supervisor stopping us) leaves the
        # tunnel up.
        self._cmd("setsid", "-w", self.wireguard_go, ifname, env=env)
        if not self.exists(ifname):
            raise WireGuardError(f"wireguard-go returned but {ifname} does not exist")
        log.info("wireguard: created %s (wireguard-go)", ifname)

    def bring_up(self, membership: Membership, *, private_key_file: Path) -> None:
        """Make ``membership.interface`` match the membership: key, hub peer, overlay /128, route."""
        ifname = membership.interface
        overlay = ipaddress.IPv6Address(membership.overlay_address)
        network = ipaddress.IPv6Network(membership.prefix, strict=False)
        changed = False
        if not self.exists(ifname):
            self.create(ifname)
            changed = True

        peers = self._cmd("wg", "show", ifname, "peers").stdout.split()
        args = ["wg", "set", ifname, "private-key", str(private_key_file)]
        if membership.listen_port:
            args += ["listen-port", str(membership.listen_port)]
        hub = membership.hub
        if hub is not None:
            allowed = ",".join(hub.allowed_ips or (str(network),))
            args += [
                "peer",
                hub.public_key,
                "allowed-ips",
                allowed,
                "persistent-keepalive",
                str(PERSISTENT_KEEPALIVE_S),
            ]
            if hub.endpoint:
                args += ["endpoint", hub.endpoint]
        self._cmd(*args)
        if hub is not None and hub.public_key not in peers:
            changed = True
        # A hub whose key changed leaves its old peer behind: drop every peer but the current hub.
        for peer in peers:
            if hub is None or peer != hub.public_key:
                self._cmd("wg", "set", ifname, "peer", peer, "remove")
                changed = True

        present = self._global_ipv6(ifname)
        for addr in present - {str(overlay)}:
            self._cmd("ip", "-6", "addr", "del", f"{addr}/128", "dev", ifname, check=False)
            changed = True
        if str(overlay) not in present:
            changed = True
            # nodad: a tentative address cannot be bound, and dockerd binds it right after.
            self._cmd("ip", "-6", "addr", "add", f"{overlay}/128", "dev", ifname, "nodad")
        self._cmd("ip", "link", "set", "dev", ifname, "up")
        self._cmd("ip", "-6", "route", "replace", str(network), "dev", ifname)
        # Applied on every heartbeat: only a change is worth an INFO line.
        log.log(
            logging.INFO if changed else logging.DEBUG,
            "wireguard: %s up, overlay %s, route %s, hub %s",
            ifname,
            overlay,
            network,
            hub.endpoint if hub else "none yet",
        )

    def _global_ipv6(self, ifname: str) -> set[str]:
        out = self._cmd("ip", "-j", "-6", "addr", "show", "dev", ifname).stdout
        found = set()
        for link in json.loads(out or "[]"):
            for info in link.get("addr_info", []):
                if info.get("family") == "inet6" and info.get("scope") == "global":
                    found.add(str(ipaddress.IPv6Address(info["local"])))
        return found

    def tear_down(self, ifname: str) -> bool:
        """Delete the interface (wireguard-go exits when its TUN goes away); True if it existed."""
        if not self.exists(ifname):
            return False
        self._cmd("ip", "link", "del", "dev", ifname)
        log.info("wireguard: removed %s", ifname)
        return True
