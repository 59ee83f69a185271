"""The lab: real network namespaces, WireGuard SDWAN, dockerd and an image registry on one machine.

Every object the lab makes carries a name prefix (default ``pnlab-``) so ``lab.teardown.down(prefix)``
can find and remove all of it, even after a crash. Needs root; see ``python -m lab --help``.
"""

from lab.proc import LabError

DEFAULT_PREFIX = "pnlab-"

__all__ = ["DEFAULT_PREFIX", "LabError"]
