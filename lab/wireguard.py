"""wireguard-go interfaces inside lab namespaces: the SDWAN hub and its spokes.

There is no kernel WireGuard here; wireguard-go's control sockets live in /var/run/wireguard for
every namespace at once, so interface names must be unique machine-wide (they carry the lab prefix).
"""

from __future__ import annotations

import base64
import ipaddress
import os
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import x25519

from lab.netns import Netns, add_route, check_ifname
from lab.proc import LabError, run, wait_for, write_private

WG_SOCKET_DIR = Path("/var/run/wireguard")


@dataclass(frozen=True)
class WgKey:
    private: str
    public: str

    @classmethod
    def generate(cls) -> WgKey:
        key = x25519.X25519PrivateKey.generate()
        raw_private = key.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )
        raw_public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return cls(base64.b64encode(raw_private).decode(), base64.b64encode(raw_public).decode())

    @classmethod
    def from_private(cls, private: str) -> WgKey:
        key = x25519.X25519PrivateKey.from_private_bytes(base64.b64decode(private))
        raw_public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return cls(private, base64.b64encode(raw_public).decode())


@dataclass
class WgInterface:
    """One wireguard-go process and its TUN interface, living in ``ns``."""

    ns: Netns
    ifname: str
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> WgInterface:
        check_ifname(self.ifname)
        sock = WG_SOCKET_DIR / f"{self.ifname}.sock"
        if sock.exists():
            raise LabError(f"{sock} exists: interface name {self.ifname} is taken by another namespace")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            # Foreground (-f) so the process is ours to stop; own session so a Ctrl-C reaches only us.
            self.process = subprocess.Popen(
                [*self.ns.prefix_argv(), "wireguard-go", "-f", self.ifname],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )
        wait_for(lambda: sock.exists() or self._died(), timeout=10, what=f"wireguard-go {self.ifname}")
        if self._died():
            raise LabError(f"wireguard-go {self.ifname} exited: {self.log_path.read_text()[-2000:]}")
        self.ns.ip("link", "set", self.ifname, "up")
        return self

    def _died(self) -> bool:
        return self.process is not None and self.process.poll() is not None

    def wg(self, *args: str, input: str | None = None) -> str:
        # wg talks to the UAPI socket, which is global; the namespace matters only for `ip`.
        return run(["wg", *args], input=input).stdout

    def set_private_key(self, key: WgKey, listen_port: int | None = None) -> None:
        argv = ["set", self.ifname, "private-key", "/dev/stdin"]
        if listen_port:
            argv += ["listen-port", str(listen_port)]
        self.wg(*argv, input=key.private + "\n")

    def set_peer(self, public_key: str, *, allowed_ips: list[str], endpoint: str | None = None,
                 keepalive: int | None = None) -> None:
        argv = ["set", self.ifname, "peer", public_key, "allowed-ips", ",".join(allowed_ips)]
        if endpoint:
            argv += ["endpoint", endpoint]
        if keepalive:
            argv += ["persistent-keepalive", str(keepalive)]
        self.wg(*argv)

    def remove_peer(self, public_key: str) -> None:
        self.wg("set", self.ifname, "peer", public_key, "remove")

    def show(self) -> str:
        return self.wg("show", self.ifname)

    def stop(self) -> None:
        # Deleting the TUN device makes wireguard-go exit; the signal covers a hung process.
        self.ns.ip("link", "del", self.ifname, check=False)
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)
        (WG_SOCKET_DIR / f"{self.ifname}.sock").unlink(missing_ok=True)


# --- wg-quick style configs (what an access grant hands to a workstation) --------------------------

@dataclass
class WgQuickConfig:
    """The parts of a wg-quick config the lab acts on besides what `wg setconf` takes."""

    addresses: list[str] = field(default_factory=list)
    peer_allowed_ips: list[str] = field(default_factory=list)
    mtu: int | None = None


def parse_wg_quick(text: str) -> WgQuickConfig:
    """Read Address/MTU and every peer's AllowedIPs (configparser cannot: [Peer] repeats)."""
    cfg = WgQuickConfig()
    section = ""
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip().lower()
            continue
        key, sep, value = line.partition("=")
        if not sep:
            continue
        key, value = key.strip().lower(), value.strip()
        items = [v.strip() for v in value.split(",") if v.strip()]
        if section == "interface" and key == "address":
            cfg.addresses += items
        elif section == "interface" and key == "mtu":
            cfg.mtu = int(value)
        elif section == "peer" and key == "allowedips":
            cfg.peer_allowed_ips += items
    if not cfg.addresses:
        raise LabError("wg-quick config has no [Interface] Address")
    return cfg


def render_wg_quick(*, private_key: str, address: str, peer_public_key: str, endpoint: str,
                    allowed_ips: list[str], keepalive: int | None = 25) -> str:
    """A wg-quick config in the access grant's shape (used for spokes the lab configures itself)."""
    lines = [
        "[Interface]", f"PrivateKey = {private_key}", f"Address = {address}", "",
        "[Peer]", f"PublicKey = {peer_public_key}", f"Endpoint = {endpoint}",
        f"AllowedIPs = {', '.join(allowed_ips)}",
    ]
    if keepalive:
        lines.append(f"PersistentKeepalive = {keepalive}")
    return "\n".join(lines) + "\n"


def spoke_up(ns: Netns, ifname: str, config_text: str, workdir: Path) -> WgInterface:
    """Bring up a spoke the way wg-quick would, from a wg-quick config, without wg-quick's side effects.

    `wg-quick strip` turns the config into what `wg setconf` takes; addresses and the routes for the
    peers' AllowedIPs are then set with `ip` in the spoke's namespace.
    """
    cfg = parse_wg_quick(config_text)
    # wg-quick derives the interface name from the file name, so the file is named after it.
    conf_path = write_private(workdir / f"{check_ifname(ifname)}.conf", config_text)
    stripped = run(["wg-quick", "strip", str(conf_path)]).stdout
    iface = WgInterface(ns, ifname, workdir / f"{ifname}.log").start()
    try:
        iface.wg("setconf", ifname, "/dev/stdin", input=stripped)
        if cfg.mtu:
            ns.ip("link", "set", ifname, "mtu", str(cfg.mtu))
        for address in cfg.addresses:
            ns.add_address(ifname, address)
        for allowed in cfg.peer_allowed_ips:
            net = ipaddress.ip_network(allowed, strict=False)
            if net.version == 6 and net.prefixlen > 0:
                add_route(ns, str(net), dev=ifname)
    except Exception:
        iface.stop()
        raise
    return iface
