"""Network namespace helpers for the agent's real tests: create, run inside, clean up."""

from __future__ import annotations

import ctypes
import http.client
import json
import os
import signal
import ssl
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

CLONE_NEWNET = 0x40000000
T = TypeVar("T")


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(list(args), capture_output=True, text=True)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {result.stderr.strip()}")
    return result


def add_netns(name: str) -> None:
    sh("ip", "netns", "add", name)
    sh("ip", "-n", name, "link", "set", "lo", "up")


def del_netns(name: str) -> None:
    sh("ip", "netns", "del", name, check=False)


def in_netns(name: str, fn: Callable[[], T]) -> T:
    """Run ``fn`` in a thread that joined netns ``name`` (setns is per thread for network namespaces)."""
    box: dict[str, Any] = {}

    def target() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(f"/var/run/netns/{name}", os.O_RDONLY)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                box["error"] = OSError(ctypes.get_errno(), "setns failed")
                return
        finally:
            os.close(fd)
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed back to the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


def kill_processes_mentioning(marker: str) -> list[int]:
    """SIGKILL every process whose command line contains ``marker`` (our temp dirs): the last cleanup net."""
    killed = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline:
            try:
                os.kill(int(proc.name), signal.SIGKILL)
                killed.append(int(proc.name))
            except ProcessLookupError:
                pass
    if killed:
        time.sleep(0.5)
    return killed


def pid_alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def unmount_under(directory: Path) -> None:
    """Lazily unmount anything mounted below ``directory`` (dockerd bind-mounts its data-root)."""
    prefix = str(directory).rstrip("/") + "/"
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    for mount in sorted((m for m in mounts if m.startswith(prefix) or m == str(directory)), reverse=True):
        subprocess.run(["umount", "-l", mount], capture_output=True)


def mtls_get_version(address: str, ca_pem: bytes, cert: bytes, key: bytes, workdir: Path) -> dict:
    """GET /version on [address]:2376 with a client certificate, as the platform and operators do."""
    (workdir / "client-cert.pem").write_bytes(cert)
    (workdir / "client-key.pem").write_bytes(key)
    os.chmod(workdir / "client-key.pem", 0o600)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cadata=ca_pem.decode())
    context.load_cert_chain(workdir / "client-cert.pem", workdir / "client-key.pem")
    conn = http.client.HTTPSConnection(address, 2376, context=context, timeout=10)
    try:
        conn.request("GET", "/version")
        response = conn.getresponse()
        if response.status != 200:
            raise RuntimeError(f"/version answered {response.status}")
        return json.loads(response.read())
    finally:
        conn.close()
