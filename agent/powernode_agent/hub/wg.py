"""The hub's WireGuard side: per-network keys, interfaces, peers converged as ``wg syncconf`` does.

Built on the node's WireGuardManager (same commands, same kernel-or-wireguard-go choice); what the hub adds
is many peers per interface, an address with the network's prefix length, and the reading of
``wg show IF dump`` for drift checks and the status report.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import re
import signal
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..state import atomic_write
from ..wireguard import (
    PERSISTENT_KEEPALIVE_S,
    WireGuardError,
    WireGuardManager,
    generate_private_key,
    public_key_for,
)
from .desired import Network, check_key

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PeerState:
    public_key: str
    allowed_ips: tuple[str, ...]
    latest_handshake: int
    rx_bytes: int
    tx_bytes: int
    endpoint: str | None = None


@dataclass
class DeviceState:
    """``wg show IF dump`` without the private key (never kept, never logged)."""

    public_key: str
    listen_port: int
    peers: list[PeerState] = field(default_factory=list)


def parse_dump(text: str) -> DeviceState:
    """Parse ``wg show IF dump``: an interface line, then one tab-separated line per peer."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise WireGuardError("wg show dump printed nothing")
    head = lines[0].split("\t")
    if len(head) != 4:
        raise WireGuardError(f"unexpected interface line in wg show dump ({len(head)} fields)")
    device = DeviceState(public_key=head[1] if head[1] != "(none)" else "", listen_port=int(head[2]))
    for line in lines[1:]:
        fields = line.split("\t")
        if len(fields) != 8:
            raise WireGuardError(f"unexpected peer line in wg show dump ({len(fields)} fields)")
        key, _psk, endpoint, allowed, handshake, rx, tx, _keepalive = fields
        ips = () if allowed in ("(none)", "") else tuple(sorted(allowed.split(",")))
        device.peers.append(
            PeerState(
                public_key=key,
                allowed_ips=ips,
                latest_handshake=int(handshake),
                rx_bytes=int(rx),
                tx_bytes=int(tx),
                endpoint=None if endpoint == "(none)" else endpoint,
            )
        )
    return device


def parse_endpoint(text: object) -> str | None:
    """``[v6]:port`` or ``v4:port`` as ``wg show dump`` prints an endpoint, normalised; else None."""
    if not isinstance(text, str) or len(text) > 80:
        return None
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        return None
    try:
        if host.startswith("[") and host.endswith("]"):
            address, _, scope = host[1:-1].partition("%")
            if scope and not re.fullmatch(r"[A-Za-z0-9_.-]{1,15}", scope):
                return None
            v6 = ipaddress.IPv6Address(address)
            return f"[{v6}{'%' + scope if scope else ''}]:{int(port)}"
        return f"{ipaddress.IPv4Address(host)}:{int(port)}"
    except ValueError:
        return None


def render_config(private_key: str, network: Network, restore: Mapping[str, str] | None = None) -> str:
    """The ``wg syncconf`` file for ``network``: private key, listen port, one [Peer] per peer.

    ``restore`` maps public keys of peers the interface lost (removed by hand, interface made again) to the
    endpoint last seen for them. Such a peer gets it back with a keepalive, so the hub opens a new session at
    once: the spoke's old session died with the peer, and the spoke alone would only notice at its next rekey
    (up to two minutes later) or after 15 s of unanswered traffic. ``wg syncconf`` keeps what a file leaves
    out, so peers that are not restored keep their live endpoint and keepalive.
    """
    check_key("private key", private_key)
    restore = restore or {}
    parts = ["[Interface]", f"PrivateKey = {private_key}", f"ListenPort = {network.listen_port}", ""]
    for peer in network.peers:
        allowed = ",".join(peer.allowed_ips)
        parts += ["[Peer]", f"PublicKey = {peer.public_key}", f"AllowedIPs = {allowed}"]
        endpoint = parse_endpoint(restore.get(peer.public_key))
        if endpoint:
            parts += [f"Endpoint = {endpoint}", f"PersistentKeepalive = {PERSISTENT_KEEPALIVE_S}"]
        parts.append("")
    return "\n".join(parts)


def remembered_endpoints(known: Mapping[str, str], device: DeviceState, network: Network) -> dict[str, str]:
    """The endpoints to keep for ``network``: live ones over those known before, desired peers only."""
    wanted = {peer.public_key for peer in network.peers}
    merged = {key: endpoint for key, endpoint in known.items() if key in wanted}
    for peer in device.peers:
        endpoint = parse_endpoint(peer.endpoint)
        if peer.public_key in wanted and endpoint:
            merged[peer.public_key] = endpoint
    return merged


def matches(device: DeviceState, network: Network, public_key: str) -> bool:
    """Whether the live device already is what ``network`` wants (so syncconf has nothing to do)."""
    if device.public_key != public_key or device.listen_port != network.listen_port:
        return False
    live = {p.public_key: p.allowed_ips for p in device.peers}
    want = {p.public_key: tuple(sorted(p.allowed_ips)) for p in network.peers}
    return live == want


class KeyStore:
    """``state_dir/keys/<network_id>.key``: 0600 files in a 0700 directory, made once, kept forever."""

    def __init__(self, state_dir: Path) -> None:
        self.dir = Path(state_dir) / "keys"

    def path(self, network_id: str) -> Path:
        return self.dir / f"{network_id}.key"

    def ensure(self, network_id: str) -> tuple[str, bool]:
        """The network's private key, and whether it was made just now."""
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.dir, 0o700)
        path = self.path(network_id)
        try:
            key = path.read_text().strip()
            check_key(f"key file {path}", key)
            return key, False
        except FileNotFoundError:
            pass
        key = generate_private_key()
        atomic_write(path, (key + "\n").encode())
        log.info("keys: made the hub's key for network %s (public %s)", network_id, public_key_for(key))
        return key, True

    def public_key(self, network_id: str) -> str | None:
        try:
            return public_key_for(self.path(network_id).read_text().strip())
        except (OSError, ValueError):
            return None


@dataclass
class LinkState:
    exists: bool
    up: bool = False
    addresses: set[str] = field(default_factory=set)  # global IPv6 "addr/prefixlen"
    kind: str | None = None


class HubWireGuard(WireGuardManager):
    """WireGuardManager plus what a hub with many peers per interface needs."""

    def link(self, ifname: str) -> LinkState:
        result = self._cmd("ip", "-j", "-d", "addr", "show", "dev", ifname, check=False)
        if result.returncode != 0:
            return LinkState(exists=False)
        data = json.loads(result.stdout or "[]")
        if not data:
            return LinkState(exists=False)
        info = data[0]
        state = LinkState(
            exists=True,
            up="UP" in (info.get("flags") or []),
            kind=(info.get("linkinfo") or {}).get("info_kind"),
        )
        for addr in info.get("addr_info", []):
            if addr.get("family") == "inet6" and addr.get("scope") == "global":
                state.addresses.add(f"{ipaddress.IPv6Address(addr['local'])}/{addr['prefixlen']}")
        return state

    def ensure_link(self, network: Network) -> list[str]:
        """Interface present, up, with exactly ``hub_address/prefixlen``; returns what had to be repaired."""
        ifname = network.ifname
        repairs: list[str] = []
        state = self.link(ifname)
        if not state.exists:
            self.create(ifname)
            repairs.append("created")
            state = self.link(ifname)
        if not state.up:
            self._cmd("ip", "link", "set", "dev", ifname, "up")
            repairs.append("set up")
            state = self.link(ifname)  # IPv6 addresses may have been flushed while it was down
        want = f"{network.hub_address}/{network.prefixlen}"
        for extra in sorted(state.addresses - {want}):
            self._cmd("ip", "-6", "addr", "del", extra, "dev", ifname, check=False)
            repairs.append(f"removed address {extra}")
        if want not in state.addresses:
            # nodad: a tentative address cannot be bound by the platform's listener at once.
            self._cmd("ip", "-6", "addr", "add", want, "dev", ifname, "nodad")
            repairs.append(f"added address {want}")
        return repairs

    def dump(self, ifname: str) -> DeviceState:
        return parse_dump(self._cmd("wg", "show", ifname, "dump").stdout)

    def syncconf(
        self, network: Network, private_key: str, tmpdir: Path, restore: Mapping[str, str] | None = None
    ) -> None:
        """Converge peers like ``wg syncconf``: only the differences are applied, other sessions live on."""
        fd, tmp = tempfile.mkstemp(prefix=f".{network.ifname}.", suffix=".conf", dir=tmpdir)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(render_config(private_key, network, restore))
            self._cmd("wg", "syncconf", network.ifname, tmp)
        finally:
            Path(tmp).unlink(missing_ok=True)

    def list_links(self) -> list[tuple[str, str | None]]:
        """(name, kind) of every link in this namespace."""
        out = self._cmd("ip", "-j", "-d", "link", "show").stdout
        links = json.loads(out or "[]")
        return [(i.get("ifname", ""), (i.get("linkinfo") or {}).get("info_kind")) for i in links]


def wireguard_go_pids(ifname: str) -> list[int]:
    """Processes ``wireguard-go [flags] IFNAME`` (names are machine-wide unique, so this is ours)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            stat = (proc / "stat").read_text()
        except OSError:
            continue
        argv = [a.decode(errors="replace") for a in argv if a]
        if stat.rsplit(")", 1)[-1].split()[0] == "Z":
            continue
        if argv and os.path.basename(argv[0]) == "wireguard-go" and argv[-1] == ifname:
            pids.append(int(proc.name))
    return pids


def wait_for_exit(ifname: str, timeout_s: float = 5.0) -> list[int]:
    """Wait for wireguard-go of ``ifname`` to exit, SIGKILL what lingers; returns the pids killed."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not wireguard_go_pids(ifname):
            return []
        time.sleep(0.05)
    killed = []
    for pid in wireguard_go_pids(ifname):
        try:
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 2
    while wireguard_go_pids(ifname) and time.monotonic() < deadline:
        time.sleep(0.05)
    Path(f"/var/run/wireguard/{ifname}.sock").unlink(missing_ok=True)
    return killed
