"""Secret files under the var dir (dev keys, admin password, operator token): private from birth, one winner.

Files are created with ``O_CREAT | O_EXCL`` at 0600, so they are never readable by others, not even for
the moment between a write and a chmod, and two processes starting together agree on one value: the one
that loses the race reads the winner's file instead of writing its own.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def private_dir(path: Path) -> Path:
    """Make ``path`` (and missing parents) a directory only its owner can enter: 0700."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = path.stat()
    if st.st_mode & 0o077 and st.st_uid == os.getuid():
        try:
            path.chmod(st.st_mode & 0o700)  # a var dir from before this rule: take group and others' access away
        except OSError:
            pass  # a read-only mount: the deployment chose its modes
    return path


def create_private_file(path: Path, make: Callable[[], str]) -> bool:
    """Create ``path`` at 0600 holding ``make()``; False, and ``make`` not called, when it already exists."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    try:
        with os.fdopen(fd, "w") as f:
            f.write(make())
    except BaseException:
        path.unlink(missing_ok=True)  # no empty file left behind to be mistaken for a secret
        raise
    return True


def read_or_create_secret(path: Path, make: Callable[[], str]) -> str:
    """The secret in ``path``; made with ``make()`` and written at 0600 when missing (the first writer wins)."""
    if not path.exists():
        # Write the whole value to a private temp file, then link it into place: link() fails when the name
        # exists, so exactly one process's value lands and nobody ever reads a half-written file.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # 0600
        try:
            with os.fdopen(fd, "w") as f:
                f.write(make())
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass  # another process won the race: read its value below
        finally:
            os.unlink(tmp)
    return path.read_text().strip()


def replace_private_file(path: Path, content: str) -> None:
    """Write ``content`` to ``path`` at 0600, replacing any previous file atomically."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # 0600
    try:
        with os.fdopen(fd, "w") as f:
            f.write(content)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
