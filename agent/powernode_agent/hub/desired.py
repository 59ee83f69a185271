"""The platform's answer (or a lab's desired-state file), parsed and validated before anything uses it.

Nothing from the platform reaches a WireGuard config, an nft ruleset or a command line unvalidated: keys
are base64 of 32 bytes, addresses are IPv6 ULA inside the network's prefix, names carry no control
characters. A network that fails validation is skipped (with its reason); the others still apply.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any

MAX_IFNAME_LEN = 15
ULA = ipaddress.IPv6Network("fd00::/8")  # the locally assigned half of fc00::/7, the only one in use
NETWORK_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")  # also a key file's name
MAX_NAME_LEN = 200
DEFAULT_POLL_INTERVAL_S = 2.0
MAX_POLL_INTERVAL_S = 300.0


class DesiredError(ValueError):
    """The desired state (or one network of it) cannot be applied as given."""


def interface_name(prefix: str, network_id: str) -> str:
    """``prefix`` + the first hex digits of sha256(network_id), 15 characters in all (IFNAMSIZ - 1).

    wireguard-go's control sockets are machine-wide, so hubs sharing a machine (the lab) use distinct
    prefixes.
    """
    room = MAX_IFNAME_LEN - len(prefix)
    if not prefix or room < 6:
        raise DesiredError(f"interface prefix {prefix!r} leaves fewer than 6 characters for the network")
    return prefix + hashlib.sha256(network_id.encode()).hexdigest()[:room]


def is_hub_interface(prefix: str, name: str) -> bool:
    """Whether ``name`` has the shape of an interface this hub makes with ``prefix``."""
    tail = name[len(prefix) :]
    return (
        name.startswith(prefix) and len(name) == MAX_IFNAME_LEN and all(c in "0123456789abcdef" for c in tail)
    )


def check_text(what: str, value: Any, *, max_len: int = MAX_NAME_LEN) -> str:
    if not isinstance(value, str):
        raise DesiredError(f"{what} must be a string")
    if any(ord(c) < 0x20 or ord(c) == 0x7F or 0x80 <= ord(c) < 0xA0 for c in value):
        raise DesiredError(f"{what} contains control characters")
    if len(value) > max_len:
        raise DesiredError(f"{what} is longer than {max_len} characters")
    return value


def check_key(what: str, value: Any) -> str:
    """A WireGuard key: standard base64 of exactly 32 bytes (44 characters with one '=')."""
    check_text(what, value, max_len=44)
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise DesiredError(f"{what} is not base64") from None
    if len(raw) != 32 or len(value) != 44:
        raise DesiredError(f"{what} is not a 32-byte key")
    return value


def _int(what: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise DesiredError(f"{what} must be an integer {low}-{high}")
    return value


@dataclass(frozen=True)
class Peer:
    public_key: str
    allowed_ips: tuple[str, ...]  # normalized /128s


@dataclass(frozen=True)
class Network:
    """One validated network: what its interface, its peers and its firewall rules are made of."""

    network_id: str
    name: str
    prefix: str  # normalized, e.g. fd00:abcd:1::/64
    hub_address: str  # normalized, e.g. fd00:abcd:1::1
    listen_port: int
    peers: tuple[Peer, ...]
    ifname: str
    platform_public_key: str = ""  # what the platform holds for the hub ("" until reported)

    @property
    def prefixlen(self) -> int:
        return ipaddress.IPv6Network(self.prefix).prefixlen

    def as_dict(self) -> dict[str, Any]:
        return {
            "network_id": self.network_id,
            "name": self.name,
            "prefix": self.prefix,
            "hub_address": self.hub_address,
            "listen_port": self.listen_port,
            "ifname": self.ifname,
        }


@dataclass
class Desired:
    desired_version: str | None
    poll_interval_s: float
    networks: list[Network] = field(default_factory=list)
    # network_id (or "#index" when there is none) -> why it was skipped
    skipped: dict[str, str] = field(default_factory=dict)


def parse_network(data: Any, *, interface_prefix: str) -> Network:
    if not isinstance(data, dict):
        raise DesiredError("a network must be an object")
    network_id = check_text("network_id", data.get("network_id"), max_len=64)
    if not NETWORK_ID_RE.fullmatch(network_id):
        raise DesiredError("network_id must be 1-64 letters, digits, '.', '_' or '-'")
    name = check_text("name", data.get("name", ""))
    try:
        prefix = ipaddress.IPv6Network(check_text("prefix", data.get("prefix"), max_len=64), strict=True)
    except ValueError as exc:
        raise DesiredError(f"prefix: {exc}") from None
    if not prefix.subnet_of(ULA):
        raise DesiredError(f"prefix {prefix} is not IPv6 ULA (fd00::/8)")
    if prefix.prefixlen > 126:
        raise DesiredError(f"prefix {prefix} is too small for a hub and peers")
    try:
        hub = ipaddress.IPv6Address(check_text("hub_address", data.get("hub_address"), max_len=64))
    except ValueError as exc:
        raise DesiredError(f"hub_address: {exc}") from None
    if hub not in prefix or hub == prefix.network_address:
        raise DesiredError(f"hub_address {hub} is not a host address in {prefix}")
    port = _int("listen_port", data.get("listen_port"), 1, 65535)
    platform_key = data.get("public_key") or ""
    if platform_key:
        check_key("public_key", platform_key)
    raw_peers = data.get("peers", [])
    if not isinstance(raw_peers, list):
        raise DesiredError("peers must be a list")
    peers: list[Peer] = []
    seen_keys: set[str] = set()
    seen_ips: set[ipaddress.IPv6Network] = set()
    for index, raw in enumerate(raw_peers):
        if not isinstance(raw, dict):
            raise DesiredError(f"peer #{index} must be an object")
        key = check_key(f"peer #{index} public_key", raw.get("public_key"))
        if key in seen_keys:
            raise DesiredError(f"peer key {key} appears twice")
        seen_keys.add(key)
        ips = raw.get("allowed_ips")
        if not isinstance(ips, list) or not ips:
            raise DesiredError(f"peer {key}: allowed_ips must be a non-empty list")
        normalized = []
        for text in ips:
            try:
                text = check_text(f"peer {key} allowed_ips", text, max_len=64)
                net = ipaddress.IPv6Network(text, strict=True)
            except ValueError as exc:
                raise DesiredError(f"peer {key}: allowed_ips: {exc}") from None
            if net.prefixlen != 128 or not net.subnet_of(prefix):
                raise DesiredError(f"peer {key}: allowed_ips {net} is not a /128 inside {prefix}")
            if net.network_address == hub:
                raise DesiredError(f"peer {key}: allowed_ips {net} is the hub's own address")
            if net in seen_ips:
                raise DesiredError(f"peer {key}: allowed_ips {net} is given to two peers")
            seen_ips.add(net)
            normalized.append(str(net))
        peers.append(Peer(key, tuple(normalized)))
    return Network(
        network_id=network_id,
        name=name,
        prefix=str(prefix),
        hub_address=str(hub),
        listen_port=port,
        peers=tuple(peers),
        ifname=interface_name(interface_prefix, network_id),
        platform_public_key=platform_key,
    )


def parse_desired(answer: Any, *, interface_prefix: str) -> Desired:
    """Validate a sync answer. Raises DesiredError when the whole answer is unusable; a bad network only
    lands in ``skipped``."""
    if not isinstance(answer, dict):
        raise DesiredError("the desired state must be a JSON object")
    version = answer.get("desired_version")
    if version is not None:
        version = check_text("desired_version", version, max_len=128)
    poll = answer.get("poll_interval_s", DEFAULT_POLL_INTERVAL_S)
    if isinstance(poll, bool) or not isinstance(poll, (int, float)) or not 0 <= poll <= MAX_POLL_INTERVAL_S:
        raise DesiredError(f"poll_interval_s must be a number 0-{MAX_POLL_INTERVAL_S:g}")
    raw_networks = answer.get("networks")
    if not isinstance(raw_networks, list):
        raise DesiredError("networks must be a list")
    desired = Desired(desired_version=version, poll_interval_s=float(poll))
    ids: set[str] = set()
    ifnames: set[str] = set()
    ports: set[int] = set()
    for index, raw in enumerate(raw_networks):
        label = raw.get("network_id") if isinstance(raw, dict) else None
        label = label if isinstance(label, str) and NETWORK_ID_RE.fullmatch(label) else f"#{index}"
        try:
            network = parse_network(raw, interface_prefix=interface_prefix)
            if network.network_id in ids:
                raise DesiredError("network_id appears twice")
            if network.ifname in ifnames:
                raise DesiredError(f"interface name {network.ifname} collides with another network's")
            if network.listen_port in ports:
                raise DesiredError(f"listen_port {network.listen_port} is used by another network")
        except DesiredError as exc:
            desired.skipped[label] = str(exc)
            continue
        ids.add(network.network_id)
        ifnames.add(network.ifname)
        ports.add(network.listen_port)
        desired.networks.append(network)
    return desired
