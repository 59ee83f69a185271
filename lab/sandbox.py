"""Run a lab process inside a namespace with a private view of a few machine files.

``nsenter --net=<ns> unshare --mount --propagation private sh -c '<bind mounts> && exec <argv>'``:
the lab's hosts file over /etc/hosts (the registry's name resolves only there), a lab directory over
/etc/docker (registry CAs in certs.d; an agent's daemon.json and TLS files land in the lab, not on the
machine) and optionally a tmpfs over /run (no shared containerd socket, runtime files die with it).
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path

from lab.netns import Netns
from lab.proc import write_private

ETC_DOCKER = Path("/etc/docker")


def write_hosts_file(path: Path, entries: Mapping[str, str]) -> Path:
    lines = ["127.0.0.1 localhost", "::1 localhost ip6-localhost ip6-loopback"]
    lines += [f"{address} {name}" for name, address in entries.items()]
    return write_private(path, "\n".join(lines) + "\n", 0o644)


def write_etc_docker(directory: Path, registry_cas: Mapping[str, str]) -> Path:
    """A private /etc/docker: ``certs.d/<registry host:port>/ca.crt`` is how dockerd trusts a registry."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o755)
    for registry, ca_pem in registry_cas.items():
        write_private(directory / "certs.d" / registry / "ca.crt", ca_pem, 0o644)
    return directory


def sandbox_argv(ns: Netns, argv: Sequence[str], *, hosts_file: Path | None = None,
                 etc_docker: Path | None = None, private_run: bool = False) -> list[str]:
    """The command line running ``argv`` in ``ns`` with the private mounts asked for."""
    steps = []
    if private_run:
        steps.append("mount -t tmpfs -o mode=0755 pnlab-run /run")
    if hosts_file:
        steps.append(f"mount --bind {shlex.quote(str(hosts_file))} /etc/hosts")
    if etc_docker:
        ETC_DOCKER.mkdir(exist_ok=True)  # a bind mount needs its mount point; docker.io owns this directory
        steps.append(f"mount --bind {shlex.quote(str(etc_docker))} {ETC_DOCKER}")
    steps.append("exec " + shlex.join(argv))
    return [*ns.prefix_argv(), "unshare", "--mount", "--propagation", "private", "sh", "-c", " && ".join(steps)]
