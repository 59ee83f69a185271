"""The agent's state directory: 0700, files 0600, written atomically so a crash never leaves half a file."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

STATE_FILE = "state.json"
DOCKER_KEY = "docker-key.pem"
DOCKER_RENEW_KEY = "docker-renew-key.pem"  # the key of a renewal in flight (saved before its wants_cert)
DOCKER_CERT = "docker-cert.pem"
DOCKER_CHAIN = "docker-chain.pem"  # verifies the daemon's server certificate (the agent's own probe)
DOCKER_CLIENT_CA = "docker-client-ca.pem"  # the network's client CA: the only clients dockerd accepts
DAEMON_CONFIG = "daemon-config.json"  # the platform's daemon_config, kept to resume after a crash
WG_PRIVATE_KEY = "wireguard.key"
DOCKERD_PID = "dockerd.pid"
DOCKERD_LOG = "dockerd.log"


def atomic_write(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Write ``data`` to ``path`` through a same-directory temp file created with ``mode``, then rename.

    The temp file is created with its final mode, so a secret is never readable by others, not even briefly.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def remove_file(path: Path) -> bool:
    """Remove ``path`` if present; True when something was removed."""
    try:
        Path(path).unlink()
        return True
    except FileNotFoundError:
        return False


class StateStore:
    """Files and a small JSON document that survive agent restarts."""

    def __init__(self, state_dir: Path) -> None:
        self.dir = Path(state_dir)

    def ensure(self) -> None:
        """Create the directory 0700 and tighten it (and its files) if someone loosened them."""
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.dir, 0o700)
        for child in self.dir.iterdir():
            if child.is_file() and not child.is_symlink():
                os.chmod(child, 0o600)

    def path(self, name: str) -> Path:
        return self.dir / name

    def write(self, name: str, data: bytes | str) -> Path:
        if isinstance(data, str):
            data = data.encode()
        self.ensure_dir()
        atomic_write(self.path(name), data)
        return self.path(name)

    def read(self, name: str) -> bytes | None:
        try:
            return self.path(name).read_bytes()
        except FileNotFoundError:
            return None

    def remove(self, name: str) -> bool:
        return remove_file(self.path(name))

    def ensure_dir(self) -> None:
        if not self.dir.is_dir():
            self.ensure()

    # The JSON document: phase bookkeeping, host id, interfaces made.
    def load(self) -> dict[str, Any]:
        return self.load_document(STATE_FILE)

    def load_document(self, name: str) -> dict[str, Any]:
        """The JSON object in file ``name``; ``{}`` if missing, not JSON, not UTF-8 or not an object."""
        raw = self.read(name)
        if raw is None:
            return {}
        try:
            data = json.loads(raw)
        except ValueError:  # JSONDecodeError and UnicodeDecodeError
            # A torn file cannot happen with atomic writes; a hand-edited broken one restarts from zero.
            return {}
        return data if isinstance(data, dict) else {}

    def save(self, data: dict[str, Any]) -> None:
        self.write(STATE_FILE, json.dumps(data, indent=2, sort_keys=True) + "\n")

    def update(self, **changes: Any) -> dict[str, Any]:
        """Merge ``changes`` into the JSON document (``None`` deletes a key) and persist it."""
        data = self.load()
        for key, value in changes.items():
            if value is None:
                data.pop(key, None)
            else:
                data[key] = value
        self.save(data)
        return data
