"""Real dockerd (Debian's docker.io) started by DockerRuntime inside a network namespace made by the test."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pnagent_netns import (
    add_netns,
    del_netns,
    in_netns,
    kill_processes_mentioning,
    mtls_get_version,
    pid_alive,
    sh,
    unmount_under,
)

from powernode_agent.config import AgentConfig
from powernode_agent.docker_runtime import DockerRuntime, DockerRuntimeError, probe_tls_listener
from powernode_agent.state import DOCKERD_PID, StateStore

pytestmark = pytest.mark.lab

OVERLAY = "fd00:5a:1::2"


@pytest.fixture
def dockerd_env(root_tools, test_ca) -> Iterator[dict]:
    root_tools("ip", "nsenter", "dockerd", "iptables")
    ns = f"pnagt-d-{secrets.token_hex(3)}"
    # Short path: containerd's unix socket lives under exec-root and socket paths are capped at 108 bytes.
    workdir = Path(tempfile.mkdtemp(prefix="pnagt-d-"))
    add_netns(ns)
    try:
        # No dummy module on these machines: a veth pair inside the namespace carries the /128.
        sh("ip", "-n", ns, "link", "add", "pnov0", "type", "veth", "peer", "name", "pnov1")
        sh("ip", "-n", ns, "-6", "addr", "add", f"{OVERLAY}/128", "dev", "pnov0", "nodad")
        sh("ip", "-n", ns, "link", "set", "pnov1", "up")
        sh("ip", "-n", ns, "link", "set", "pnov0", "up")
        config = AgentConfig(
            state_dir=workdir / "state",
            docker_tls_dir=workdir / "tls",
            daemon_json_path=workdir / "daemon.json",
            dockerd_launch="child",
            dockerd_binary="dockerd",
            # The lab's form: own network namespace, private mount namespace (dockerd's mounts die with it)
            # and a per-node /etc/hosts bound in before dockerd starts; "$@" receives dockerd's argv.
            dockerd_command_prefix=[
                "nsenter",
                f"--net=/var/run/netns/{ns}",
                "unshare",
                "-m",
                "--propagation",
                "private",
                "sh",
                "-c",
                f'mount --bind {workdir / "hosts"} /etc/hosts && exec "$@"',
                "sh",
            ],
            daemon_json_extras={
                "data-root": str(workdir / "data"),
                "exec-root": str(workdir / "exec"),
                "pidfile": str(workdir / "docker.pid"),
                "bip": "198.18.42.1/24",
            },
            ready_timeout_s=60,
        )
        (workdir / "hosts").write_text("fd00:5a:1::99 registry.pnagt.test\n")
        store = StateStore(config.state_dir)
        store.ensure()
        yield {"ns": ns, "workdir": workdir, "config": config, "store": store, "ca": test_ca}
    finally:
        kill_processes_mentioning(str(workdir))
        unmount_under(workdir)
        del_netns(ns)
        shutil.rmtree(workdir, ignore_errors=True)


def _port_open(address: str) -> bool:
    try:
        with socket.create_connection((address, 2376), timeout=3):
            return True
    except OSError:
        return False


def test_dockerd_starts_serves_mtls_only_and_stops(dockerd_env: dict) -> None:
    ns, workdir, config, store, ca = (dockerd_env[k] for k in ("ns", "workdir", "config", "store", "ca"))
    runtime = DockerRuntime(config, store)
    key_pem, cert_pem = ca.server_keypair(OVERLAY)
    platform_config = {
        "hosts": [f"tcp://[{OVERLAY}]:2376"],
        "ip": OVERLAY,
        "tls": True,
        "tlsverify": True,
        "tlscacert": "/etc/docker/powernode/ca.pem",
        "tlscert": "/etc/docker/powernode/cert.pem",
        "tlskey": "/etc/docker/powernode/key.pem",
    }
    runtime.write_tls(key_pem=key_pem, cert_pem=cert_pem, chain_pem=ca.pem)
    runtime.write_daemon_json(platform_config)
    runtime.validate(allowed_addresses=[OVERLAY])
    for name in ("key.pem", "cert.pem", "ca.pem"):
        assert (workdir / "tls" / name).stat().st_mode & 0o777 == 0o600

    runtime.start()
    pid = int(store.read(DOCKERD_PID))
    version = in_netns(ns, lambda: runtime.wait_ready(OVERLAY, ca.pem.decode()))
    # The prefix exec'd into dockerd (same pid), which sees the node's hosts file; the machine's is untouched.
    assert Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].endswith(b"dockerd")
    assert "registry.pnagt.test" in Path(f"/proc/{pid}/root/etc/hosts").read_text()
    assert "registry.pnagt.test" not in Path("/etc/hosts").read_text()
    assert version.startswith("20.10") or int(version.split(".")[0]) >= 23

    # Readiness was truthful: with a client cert from our CA the API answers, with the same engine version.
    client_key, client_cert = ca.client_keypair()
    info = in_netns(ns, lambda: mtls_get_version(OVERLAY, ca.pem, client_cert, client_key, workdir))
    assert info["Version"] == version
    # It listens on the overlay /128 only: nothing on the namespace's loopback.
    assert in_netns(ns, lambda: _port_open("::1")) is False
    assert not (workdir / "exec" / "docker.sock").exists()

    # The supervisor brings a crashed dockerd back.
    os.kill(pid, signal.SIGKILL)
    # A multi-threaded process is reapable only once all its threads are gone: poll, bounded.
    deadline = time.monotonic() + 30
    while runtime.is_running() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert runtime.is_running() is False
    assert not pid_alive(pid)
    assert runtime.supervise_once() is True
    new_pid = int(store.read(DOCKERD_PID))
    assert new_pid != pid
    assert in_netns(ns, lambda: runtime.wait_ready(OVERLAY, ca.pem.decode())) == version

    runtime.stop()
    assert not pid_alive(new_pid)
    assert runtime.is_running() is False
    assert store.read(DOCKERD_PID) is None
    assert in_netns(ns, lambda: _port_open(OVERLAY)) is False
    with pytest.raises(DockerRuntimeError, match="nothing answers"):
        in_netns(ns, lambda: probe_tls_listener(OVERLAY, ca.pem.decode(), timeout_s=2))

    removed = runtime.remove_files()
    assert str(workdir / "tls" / "key.pem") in removed
    assert not (workdir / "daemon.json").exists()
    assert not (workdir / "tls").exists()
