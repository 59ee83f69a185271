"""A dockerd inside a lab namespace, isolated from the machine's own Docker files.

It runs as ``nsenter --net=<ns> unshare -m sh -c '<private mounts> && exec dockerd --config-file ...'``:
the private mount namespace gets a tmpfs on /run (no shared containerd socket, no stray runtime
files), the lab's hosts file on /etc/hosts (the registry's name resolves only here) and a private
/etc/docker (registry CAs in certs.d, dockerd's key.json). ``ip netns exec`` is not used: it
remounts /sys and dockerd then fails on cgroups.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab.netns import Netns
from lab.pki import KeyPair
from lab.proc import LabError, wait_for, write_private
from lab.sandbox import sandbox_argv, write_etc_docker, write_hosts_file


@dataclass
class DockerdTls:
    """Server side of the daemon's mutual TLS: its CA (to verify clients) and its own keypair."""

    ca_pem: str
    server: KeyPair


@dataclass
class LabDockerd:
    """One dockerd with its own data-root, exec-root, pidfile, bridge and cgroup parent."""

    ns: Netns
    name: str  # carries the lab prefix: also the cgroup parent of its containers
    workdir: Path
    tcp_hosts: list[str] = field(default_factory=list)  # e.g. ["tcp://[fd..::10]:2376"]
    unix_socket: bool = False
    tls: DockerdTls | None = None
    bip: str | None = "198.18.0.1/24"  # None: no bridge at all (image builder)
    hosts_entries: dict[str, str] = field(default_factory=dict)  # name -> address, for /etc/hosts
    registry_cas: dict[str, str] = field(default_factory=dict)  # "name:port" -> CA PEM
    extra_config: dict[str, Any] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def socket_path(self) -> Path:
        return self.workdir / "docker.sock"

    @property
    def log_path(self) -> Path:
        return self.workdir / "dockerd.log"

    @property
    def exec_root(self) -> Path:
        return self.workdir / "exec"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process and self.process.poll() is None else None

    def config(self) -> dict[str, Any]:
        """The daemon.json written for this daemon."""
        hosts = list(self.tcp_hosts)
        if self.unix_socket:
            hosts.append(f"unix://{self.socket_path}")
        if not hosts:
            raise LabError("a dockerd needs at least one listener (tcp_hosts or unix_socket)")
        cfg: dict[str, Any] = {
            "hosts": hosts,
            "data-root": str(self.workdir / "data"),
            "exec-root": str(self.exec_root),
            "pidfile": str(self.workdir / "docker.pid"),
            "cgroup-parent": f"/{self.name}",
            # busybox httpd as PID 1 ignores SIGTERM: do not wait the default 15 s on shutdown.
            "shutdown-timeout": 2,
        }
        if self.bip:
            cfg["bip"] = self.bip
        else:
            cfg.update({"bridge": "none", "iptables": False, "ip-forward": False, "ip-masq": False})
        if self.tls:
            tls_dir = self.workdir / "tls"
            cfg.update({
                "tls": True, "tlsverify": True,
                "tlscacert": str(tls_dir / "ca.pem"),
                "tlscert": str(tls_dir / "cert.pem"),
                "tlskey": str(tls_dir / "key.pem"),
            })
        cfg.update(self.extra_config)
        return cfg

    def _write_files(self) -> Path:
        self.workdir.mkdir(parents=True, exist_ok=True, mode=0o700)
        cfg = self.config()
        if self.tls:
            write_private(Path(cfg["tlscacert"]), self.tls.ca_pem, 0o644)
            write_private(Path(cfg["tlscert"]), self.tls.server.cert_pem, 0o644)
            write_private(Path(cfg["tlskey"]), self.tls.server.key_pem, 0o600)
        write_hosts_file(self.workdir / "hosts", self.hosts_entries)
        write_etc_docker(self.workdir / "etc-docker", self.registry_cas)
        return write_private(self.workdir / "daemon.json", json.dumps(cfg, indent=2) + "\n", 0o600)

    def argv(self, config_path: Path) -> list[str]:
        # Private /run: dockerd would otherwise share a system containerd socket if one existed.
        return sandbox_argv(self.ns, ["dockerd", "--config-file", str(config_path)],
                            hosts_file=self.workdir / "hosts", etc_docker=self.workdir / "etc-docker",
                            private_run=True)

    def start(self, *, timeout: float = 60) -> LabDockerd:
        if not self.ns.exists():
            raise LabError(f"namespace {self.ns.name} does not exist")
        config_path = self._write_files()
        self.log_path.write_bytes(b"")
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.argv(config_path), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        try:
            wait_for(self._ready_or_dead, timeout=timeout, what=f"dockerd {self.name}")
            if self.process.poll() is not None:
                raise LabError(f"dockerd {self.name} exited ({self.process.returncode}):\n{self.log_tail()}")
        except Exception:
            self.stop()
            raise
        return self

    def _ready_or_dead(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            return True
        # dockerd logs "API listen on ..." once per listener, after its initialisation is complete.
        text = self.log_path.read_text(errors="replace")
        return text.count("API listen on") >= len(self.config()["hosts"])

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self, *, timeout: float = 30) -> None:
        """Stop the daemon (it stops its containers first), then anything it left behind."""
        from lab.teardown import kill_matching  # here to keep teardown free to import this module

        # The lab's containers are disposable; a dockerd would wait 10 s for each whose PID 1 ignores SIGTERM.
        kill_matching(cgroup_contains=[f"/{self.name}/"], grace=0)
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        # containerd shims outlive a killed dockerd; they name the exec-root on their command line.
        kill_matching(cmdline_contains=[str(self.workdir)], cgroup_contains=[f"/{self.name}/"])

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)
