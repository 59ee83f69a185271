"""Subprocess and readiness helpers shared by the lab's primitives."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

# The tools the lab drives, and the Debian package that ships each (scripts/install_lab_deps.sh).
TOOLS = {
    "ip": "iproute2",
    "nsenter": "util-linux",
    "unshare": "util-linux",
    "wireguard-go": "wireguard-go",
    "wg": "wireguard-tools",
    "wg-quick": "wireguard-tools",
    "nft": "nftables",
    "dockerd": "docker.io",
    "docker-registry": "docker-registry",
    "curl": "curl",
    "htpasswd": "apache2-utils",
    "ss": "iproute2",
}
BUSYBOX_STATIC = Path("/bin/busybox")


class LabError(RuntimeError):
    """A lab step failed; the message carries the command and its output."""


def run(
    argv: Sequence[str], *, input: str | None = None, check: bool = True, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run a command, capturing text output; raise LabError with its stderr when it fails."""
    try:
        proc = subprocess.run(
            list(argv), input=input, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"timed out after {timeout}s: {' '.join(argv)}") from exc
    if check and proc.returncode != 0:
        raise LabError(
            f"command failed ({proc.returncode}): {' '.join(argv)}\n{proc.stderr.strip() or proc.stdout.strip()}"
        )
    return proc


def missing_tools() -> list[str]:
    """Names of the tools (and static busybox) the lab needs that are not installed."""
    missing = [f"{tool} (package {pkg})" for tool, pkg in TOOLS.items() if shutil.which(tool) is None]
    if not _is_static_busybox(BUSYBOX_STATIC):
        missing.append("static /bin/busybox (package busybox-static)")
    if not Path("/dev/net/tun").exists():
        missing.append("/dev/net/tun (wireguard-go needs it)")
    return missing


def _is_static_busybox(path: Path) -> bool:
    # A dynamically linked busybox would not run in a FROM scratch image: it names an ELF interpreter.
    try:
        return path.is_file() and b"/lib64/ld-linux" not in path.read_bytes()[:4096]
    except OSError:
        return False


def why_lab_cannot_run() -> str | None:
    """None when the lab can run here, else a human reason (not root, tools missing)."""
    if os.geteuid() != 0:
        return "the lab needs root (network namespaces, WireGuard, dockerd)"
    missing = missing_tools()
    if missing:
        return "missing: " + ", ".join(missing) + " — run scripts/install_lab_deps.sh"
    return None


def wait_for(check: Callable[[], T | None], *, timeout: float, what: str, interval: float = 0.05) -> T:
    """Poll ``check`` until it returns a truthy value; its exceptions count as 'not yet'."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            result = check()
            if result:
                return result
        except Exception as exc:  # noqa: BLE001 - any failure here just means "not ready yet"
            last_error = exc
        if time.monotonic() > deadline:
            detail = f": {last_error}" if last_error else ""
            raise LabError(f"timed out after {timeout}s waiting for {what}{detail}")
        time.sleep(interval)


def write_private(path: Path, text: str, mode: int = 0o600) -> Path:
    """Write a file readable only by its owner (keys, configs holding keys)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(path, mode)
    return path
