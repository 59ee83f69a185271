"""Network namespaces and veth links: the lab's machines and their underlay cables."""

from __future__ import annotations

import contextlib
import ctypes
import ipaddress
import os
import subprocess
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from lab.proc import LabError, run

NETNS_DIR = Path("/var/run/netns")
CLONE_NEWNET = 0x40000000
IFNAMSIZ = 15

_libc = ctypes.CDLL(None, use_errno=True)


def check_ifname(name: str) -> str:
    """Interface names are at most 15 bytes; wireguard-go also needs them unique machine-wide."""
    if not name or len(name.encode()) > IFNAMSIZ or "/" in name or " " in name:
        raise LabError(f"invalid interface name {name!r} (1-15 characters, no '/' or space)")
    return name


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


@contextlib.contextmanager
def in_netns(name: str) -> Iterator[None]:
    """Move the calling thread into a network namespace for the block, then back.

    The network namespace is per thread: sockets opened inside the block stay in ``name``
    for their whole life (a requests/docker-py pool keeps working after the block ends).
    """
    own = os.open(f"/proc/self/task/{threading.get_native_id()}/ns/net", os.O_RDONLY)
    target = os.open(NETNS_DIR / name, os.O_RDONLY)
    try:
        _setns(target)
        try:
            yield
        finally:
            _setns(own)
    finally:
        os.close(target)
        os.close(own)


@dataclass
class Netns:
    """A named network namespace (``ip netns``); commands run inside it through nsenter."""

    name: str

    @property
    def path(self) -> Path:
        return NETNS_DIR / self.name

    def create(self) -> Netns:
        if self.path.exists():
            raise LabError(f"network namespace {self.name} already exists (run `python -m lab down`?)")
        run(["ip", "netns", "add", self.name])
        self.ip("link", "set", "lo", "up")
        # No router advertisements or autoconfiguration: the lab sets every address itself.
        self.sysctl("net.ipv6.conf.all.accept_ra", "0")
        self.sysctl("net.ipv6.conf.default.accept_ra", "0")
        return self

    def exists(self) -> bool:
        return self.path.exists()

    def prefix_argv(self) -> list[str]:
        """argv prefix running a command in this namespace; unlike ``ip netns exec`` it leaves /sys alone."""
        return ["nsenter", f"--net={self.path}"]

    def run(self, *argv: str, input: str | None = None, check: bool = True, timeout: float = 60
            ) -> subprocess.CompletedProcess[str]:
        return run([*self.prefix_argv(), *argv], input=input, check=check, timeout=timeout)

    def ip(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run(["ip", "-n", self.name, *args], check=check)

    def sysctl(self, key: str, value: str) -> None:
        self.run("sysctl", "-qw", f"{key}={value}")

    def add_address(self, ifname: str, cidr: str) -> None:
        family = "-6" if ipaddress.ip_interface(cidr).version == 6 else "-4"
        # nodad: an address still in duplicate address detection cannot be bound for ~2 s.
        extra = ["nodad"] if family == "-6" else []
        self.ip(family, "addr", "add", cidr, "dev", ifname, *extra)

    def pids(self) -> list[int]:
        out = run(["ip", "netns", "pids", self.name], check=False).stdout
        return [int(p) for p in out.split()]

    def listening_tcp(self) -> list[tuple[str, int, str]]:
        """(address, port, process name) of every listening TCP socket in the namespace."""
        out = self.run("ss", "-Htlnp").stdout
        return parse_ss_listeners(out)

    def delete(self) -> None:
        if self.exists():
            run(["ip", "netns", "del", self.name], check=False)


def parse_ss_listeners(out: str) -> list[tuple[str, int, str]]:
    """Parse `ss -Htlnp` lines into (address, port, process)."""
    found = []
    for line in out.splitlines():
        cols = line.split()
        if len(cols) < 5:
            continue
        local = cols[3]
        addr, _, port = local.rpartition(":")
        addr = addr.strip("[]").split("%")[0]
        proc = ""
        if "users:((" in line:
            proc = line.split('users:(("', 1)[1].split('"', 1)[0]
        found.append((addr, int(port), proc))
    return found


@dataclass(frozen=True)
class Link:
    """A point-to-point underlay cable: a veth pair with a ULA /64, ::1 on side A and ::2 on side B."""

    a: Netns
    a_ifname: str
    a_address: str
    b: Netns
    b_ifname: str
    b_address: str


def connect(a: Netns, a_ifname: str, b: Netns, b_ifname: str, prefix64: str) -> Link:
    """Join two namespaces with a veth pair addressed from an IPv6 ULA /64 (never IPv4 private ranges)."""
    net = ipaddress.IPv6Network(prefix64)
    if net.prefixlen != 64 or not net.subnet_of(ipaddress.IPv6Network("fd00::/8")):
        raise LabError(f"underlay links use ULA /64 prefixes (fd00::/8), got {prefix64}")
    check_ifname(a_ifname)
    check_ifname(b_ifname)
    run(["ip", "link", "add", a_ifname, "netns", a.name, "type", "veth", "peer", "name", b_ifname,
         "netns", b.name])
    a_addr, b_addr = str(net[1]), str(net[2])
    a.add_address(a_ifname, f"{a_addr}/64")
    b.add_address(b_ifname, f"{b_addr}/64")
    a.ip("link", "set", a_ifname, "up")
    b.ip("link", "set", b_ifname, "up")
    return Link(a, a_ifname, a_addr, b, b_ifname, b_addr)


def add_route(ns: Netns, destination: str, *, via: str | None = None, dev: str | None = None) -> None:
    argv: Sequence[str] = ["-6", "route", "replace", destination]
    if via:
        argv = [*argv, "via", via]
    if dev:
        argv = [*argv, "dev", dev]
    ns.ip(*argv)
