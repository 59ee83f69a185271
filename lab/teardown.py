"""Remove everything a lab with a given prefix made, whether or not the Python objects still exist.

Found by name: namespaces, interfaces, wireguard-go sockets, cgroups and the work directory all
carry the prefix; processes are found by namespace, command line and cgroup.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

from lab.proc import run

NETNS_DIR = Path("/var/run/netns")
WG_SOCKET_DIR = Path("/var/run/wireguard")
CGROUP_ROOT = Path("/sys/fs/cgroup")


def lab_dir(prefix: str) -> Path:
    """The work directory of the lab with this prefix (configs, logs, data-roots, registry storage)."""
    return Path(tempfile.gettempdir()) / f"{prefix}lab"


def _read(path: Path) -> str:
    try:
        return path.read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _all_pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) != os.getpid()]


def matching_pids(*, cmdline_contains: Iterable[str] = (), cgroup_contains: Iterable[str] = (),
                  netns_inodes: Iterable[int] = ()) -> list[int]:
    cmd_needles = [s for s in cmdline_contains if s]
    cg_needles = [s for s in cgroup_contains if s]
    inodes = set(netns_inodes)
    found = []
    for pid in _all_pids():
        proc = Path(f"/proc/{pid}")
        if cmd_needles and any(n in _read(proc / "cmdline") for n in cmd_needles):
            found.append(pid)
            continue
        if cg_needles and any(n in _read(proc / "cgroup") for n in cg_needles):
            found.append(pid)
            continue
        if inodes:
            try:
                if os.stat(proc / "ns" / "net").st_ino in inodes:
                    found.append(pid)
            except OSError:
                pass
    return found


def _signal_all(pids: Iterable[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def kill_matching(*, cmdline_contains: Iterable[str] = (), cgroup_contains: Iterable[str] = (),
                  netns_inodes: Iterable[int] = (), grace: float = 5.0) -> list[int]:
    """SIGTERM the matching processes, SIGKILL whatever is left after ``grace`` seconds."""
    kwargs = {"cmdline_contains": list(cmdline_contains), "cgroup_contains": list(cgroup_contains),
              "netns_inodes": list(netns_inodes)}
    pids = matching_pids(**kwargs)
    if not pids:
        return []
    _signal_all(pids, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        left = [p for p in matching_pids(**kwargs) if Path(f"/proc/{p}").exists()]
        if not left:
            return pids
        time.sleep(0.1)
    _signal_all(matching_pids(**kwargs), signal.SIGKILL)
    time.sleep(0.2)
    return pids


def _netns_names(prefix: str) -> list[str]:
    try:
        return sorted(n for n in os.listdir(NETNS_DIR) if n.startswith(prefix))
    except FileNotFoundError:
        return []


def _remove_cgroups(prefix: str) -> None:
    # Containers run under /<prefix>...; their cgroup directories outlive the processes.
    if not CGROUP_ROOT.is_dir():
        return
    candidates = [CGROUP_ROOT / d for d in os.listdir(CGROUP_ROOT)] + [CGROUP_ROOT]
    for hierarchy in candidates:
        if not hierarchy.is_dir() or hierarchy.is_symlink():
            continue
        try:
            entries = [e for e in os.listdir(hierarchy) if e.startswith(prefix)]
        except OSError:
            continue
        for entry in entries:
            top = hierarchy / entry
            for dirpath, _dirs, _files in sorted(os.walk(top), key=lambda w: -len(w[0])):
                try:
                    os.rmdir(dirpath)
                except OSError:
                    pass


def _unmount_under(path: Path) -> None:
    target = str(path)
    mounts = []
    for line in _read(Path("/proc/self/mountinfo")).splitlines():
        cols = line.split()
        if len(cols) > 4 and (cols[4] == target or cols[4].startswith(target + "/")):
            mounts.append(cols[4])
    for mountpoint in sorted(mounts, key=len, reverse=True):
        run(["umount", "-l", mountpoint], check=False)


def leftovers(prefix: str) -> dict[str, list[str]]:
    """What of a lab with this prefix still exists on the machine (empty lists when clean)."""
    links = run(["ip", "-o", "link", "show"], check=False).stdout
    root_links = [ln.split(":")[1].strip().split("@")[0] for ln in links.splitlines() if ":" in ln]
    sockets = [s for s in (os.listdir(WG_SOCKET_DIR) if WG_SOCKET_DIR.is_dir() else []) if s.startswith(prefix)]
    cgroups = []
    if CGROUP_ROOT.is_dir():
        for hierarchy in [CGROUP_ROOT, *(CGROUP_ROOT / d for d in os.listdir(CGROUP_ROOT))]:
            try:
                cgroups += [str(hierarchy / e) for e in os.listdir(hierarchy) if e.startswith(prefix)]
            except OSError:
                pass
    directory = lab_dir(prefix)
    return {
        "netns": _netns_names(prefix),
        "links": [name for name in root_links if name.startswith(prefix)],
        "wireguard_sockets": sockets,
        "processes": [str(p) for p in matching_pids(cmdline_contains=[str(directory), f"wireguard-go -f {prefix}"],
                                                    cgroup_contains=[f"/{prefix}"])],
        "cgroups": cgroups,
        "files": [str(directory)] if directory.exists() else [],
    }


OWNER_FILE = "owner.pid"


def stale_prefixes(pattern: str) -> list[str]:
    """Prefixes matching the regex ``pattern`` whose lab directory names an owner process that is gone
    (a test run killed with SIGKILL); labs of live processes are left alone."""
    found = []
    for entry in Path(tempfile.gettempdir()).glob("*lab"):
        prefix = entry.name[: -len("lab")]
        if not re.fullmatch(pattern, prefix):
            continue
        try:
            owner = int((entry / OWNER_FILE).read_text().strip())
        except (OSError, ValueError):
            continue
        if not Path(f"/proc/{owner}").exists():
            found.append(prefix)
    return found


def down(prefix: str) -> dict[str, list[str]]:
    """Remove every namespace, interface, process, cgroup and file of the lab with this prefix.

    Safe to run at any time and more than once. Returns what is still left (empty when clean).
    """
    if not prefix or len(prefix) < 3:
        raise ValueError("refusing to tear down with an empty or too short prefix")
    directory = lab_dir(prefix)
    names = _netns_names(prefix)
    inodes = []
    for name in names:
        try:
            inodes.append(os.stat(NETNS_DIR / name).st_ino)
        except OSError:
            pass
    # Containers first, at once: a dockerd waits 10 s per container whose PID 1 ignores SIGTERM.
    _signal_all(matching_pids(cgroup_contains=[f"/{prefix}"]), signal.SIGKILL)
    # Then the dockerds, gracefully: they clean up after their containers and unmount their layers.
    dockerds = [p for p in matching_pids(cmdline_contains=[str(directory)])
                if "dockerd" in _read(Path(f"/proc/{p}/comm"))]
    if dockerds:
        _signal_all(dockerds, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in dockerds):
            time.sleep(0.1)
    # Everything else: processes in the namespaces (wireguard-go, registry, servers, agents),
    # processes naming the work directory (containerd shims) and container processes (cgroups).
    kill_matching(cmdline_contains=[str(directory), f"wireguard-go -f {prefix}"],
                  cgroup_contains=[f"/{prefix}"], netns_inodes=inodes)
    for name in names:
        run(["ip", "netns", "del", name], check=False)
    for line in run(["ip", "-o", "link", "show"], check=False).stdout.splitlines():
        if ":" in line:
            ifname = line.split(":")[1].strip().split("@")[0]
            if ifname.startswith(prefix):
                run(["ip", "link", "del", ifname], check=False)
    if WG_SOCKET_DIR.is_dir():
        for sock in WG_SOCKET_DIR.iterdir():
            if sock.name.startswith(prefix):
                sock.unlink(missing_ok=True)
    _remove_cgroups(prefix)
    _unmount_under(directory)
    shutil.rmtree(directory, ignore_errors=True)
    return {k: v for k, v in leftovers(prefix).items() if v}
