"""daemon.json merge/rewrite/validation, systemd drop-in, install-if-missing and the TLS readiness probe."""

from __future__ import annotations

import json
import os
import socket
import ssl
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from powernode_agent.config import AgentConfig
from powernode_agent.docker_runtime import (
    DaemonConfigError,
    DockerRuntime,
    DockerRuntimeError,
    build_daemon_json,
    check_daemon_json,
    parse_engine_version,
    probe_tls_listener,
    systemd_dropin_text,
)
from powernode_agent.state import StateStore

OVERLAY = "fd00:abcd:1::2"
PLATFORM_CONFIG = {
    "hosts": [f"tcp://[{OVERLAY}]:2376"],
    "ip": OVERLAY,
    "tls": True,
    "tlsverify": True,
    "tlscacert": "/etc/docker/powernode/ca.pem",
    "tlscert": "/etc/docker/powernode/cert.pem",
    "tlskey": "/etc/docker/powernode/key.pem",
}


@pytest.fixture
def tls_dir(tmp_path: Path, test_ca) -> Path:
    directory = tmp_path / "tls"
    directory.mkdir()
    key, cert = test_ca.server_keypair(OVERLAY)
    (directory / "key.pem").write_bytes(key)
    (directory / "cert.pem").write_bytes(cert)
    (directory / "ca.pem").write_bytes(test_ca.pem)
    return directory


def _write(tmp_path: Path, config: dict) -> Path:
    path = tmp_path / "daemon.json"
    path.write_text(json.dumps(config))
    return path


def test_build_rewrites_tls_paths_and_merges_extras(tmp_path: Path) -> None:
    extras = {"data-root": "/srv/d", "bip": "198.18.3.1/24", "insecure-registries": ["registry.lab:5000"]}
    merged = build_daemon_json(PLATFORM_CONFIG, tls_dir=tmp_path / "tls", extras=extras)
    assert merged["hosts"] == PLATFORM_CONFIG["hosts"]
    assert merged["tls"] is True and merged["tlsverify"] is True
    assert merged["tlscacert"] == str(tmp_path / "tls" / "ca.pem")
    assert merged["tlscert"] == str(tmp_path / "tls" / "cert.pem")
    assert merged["tlskey"] == str(tmp_path / "tls" / "key.pem")
    assert merged["bip"] == "198.18.3.1/24" and merged["insecure-registries"] == ["registry.lab:5000"]


@pytest.mark.parametrize("key", ["hosts", "ip", "tls", "tlsverify", "tlskey"])
def test_extras_may_not_touch_listener_or_tls(tmp_path: Path, key: str) -> None:
    with pytest.raises(DaemonConfigError, match=key):
        build_daemon_json(PLATFORM_CONFIG, tls_dir=tmp_path, extras={key: "x"})


def test_a_good_daemon_json_passes(tmp_path: Path, tls_dir: Path) -> None:
    config = build_daemon_json(PLATFORM_CONFIG, tls_dir=tls_dir, extras={"bip": "198.18.0.1/24"})
    assert check_daemon_json(_write(tmp_path, config), allowed_addresses=[OVERLAY])["bip"] == "198.18.0.1/24"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"hosts": ["tcp://0.0.0.0:2376"]}, "not the IPv6 overlay"),
        ({"hosts": ["tcp://[::]:2376"]}, "not a unicast overlay"),
        ({"hosts": ["unix:///var/run/docker.sock"]}, "unix sockets"),
        ({"hosts": ["fd://"]}, "not tcp"),
        ({"hosts": [f"tcp://[{OVERLAY}]:2376", "unix:///var/run/docker.sock"]}, "exactly one"),
        ({"hosts": [f"tcp://[{OVERLAY}]:2376", "tcp://[fd00:abcd:1::9]:2376"]}, "exactly one"),
        ({"hosts": []}, "exactly one"),
        ({"hosts": [f"tcp://[{OVERLAY}]:2375"]}, "port 2376"),
        ({"hosts": ["tcp://[fd00:abcd:1::9]:2376"]}, "not an overlay address of this node"),
        ({"hosts": ["tcp://[::1]:2376"]}, "not a unicast overlay"),
        ({"ip": "0.0.0.0"}, "ip .*must be the overlay address"),
        ({"ip": "::"}, "ip .*must be the overlay address"),
        ({"ip": "fd00:abcd:1::9"}, "ip .*must be the overlay address"),
        ({"ip": "not-an-address"}, "ip .*must be the overlay address"),
        ({"ip": None}, "ip .*must be the overlay address"),
        ({"tls": False}, "tls must be true"),
        ({"tlsverify": False}, "tlsverify must be true"),
        ({"tlsverify": "true"}, "tlsverify must be true"),
    ],
)
def test_refused_daemon_json(tmp_path: Path, tls_dir: Path, change: dict, message: str) -> None:
    config = {**build_daemon_json(PLATFORM_CONFIG, tls_dir=tls_dir, extras={}), **change}
    with pytest.raises(DaemonConfigError, match=message):
        check_daemon_json(_write(tmp_path, config), allowed_addresses=[OVERLAY])


def test_a_daemon_config_without_ip_is_refused(tmp_path: Path, tls_dir: Path) -> None:
    """Without ``ip`` dockerd publishes ports on every interface of the node, outside the SDWAN."""
    platform_config = {k: v for k, v in PLATFORM_CONFIG.items() if k != "ip"}
    config = build_daemon_json(platform_config, tls_dir=tls_dir, extras={})
    with pytest.raises(DaemonConfigError, match="ip .*must be the overlay address"):
        check_daemon_json(_write(tmp_path, config), allowed_addresses=[OVERLAY])


def test_missing_tls_file_key_mismatch_and_wrong_san(tmp_path: Path, tls_dir: Path, test_ca) -> None:
    path = _write(tmp_path, build_daemon_json(PLATFORM_CONFIG, tls_dir=tls_dir, extras={}))
    other_key, _ = test_ca.server_keypair(OVERLAY)
    (tls_dir / "key.pem").write_bytes(other_key)
    with pytest.raises(DaemonConfigError, match="does not match"):
        check_daemon_json(path)
    key, cert = test_ca.server_keypair("fd00:abcd:1::77")
    (tls_dir / "key.pem").write_bytes(key)
    (tls_dir / "cert.pem").write_bytes(cert)
    with pytest.raises(DaemonConfigError, match="IP SANs"):
        check_daemon_json(path)
    (tls_dir / "ca.pem").unlink()
    with pytest.raises(DaemonConfigError, match="tlscacert"):
        check_daemon_json(path)


def test_not_json_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "daemon.json"
    path.write_text('{"hosts": [')
    with pytest.raises(DaemonConfigError):
        check_daemon_json(path)


def test_engine_version_parsing() -> None:
    assert parse_engine_version("Docker version 20.10.24+dfsg1, build 5d6db84\n") == "20.10.24+dfsg1"
    assert parse_engine_version("Docker version 25.0.3, build 4debf41") == "25.0.3"
    with pytest.raises(DockerRuntimeError):
        parse_engine_version("command not found")


def test_systemd_dropin_clears_execstart_and_drops_H() -> None:
    stock = (
        "[Service]\nType=notify\n"
        "ExecStart=/usr/sbin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock $DOCKER_OPTS\n"
    )
    text = systemd_dropin_text(stock, "/usr/sbin/dockerd", Path("/etc/docker/daemon.json"))
    lines = [line for line in text.splitlines() if line.startswith("ExecStart")]
    assert lines == [
        "ExecStart=",
        "ExecStart=/usr/sbin/dockerd --config-file /etc/docker/daemon.json "
        "--containerd=/run/containerd/containerd.sock $DOCKER_OPTS",
    ]
    bare = systemd_dropin_text(None, "/usr/bin/dockerd", Path("/etc/docker/daemon.json"))
    assert "ExecStart=/usr/bin/dockerd --config-file /etc/docker/daemon.json\n" in bare
    odd = systemd_dropin_text("ExecStart=/d --host=unix:///x -Htcp://y -H fd://", "/d", Path("/c.json"))
    assert odd.splitlines()[-1] == "ExecStart=/d --config-file /c.json"


def test_systemd_start_writes_dropin_and_restarts(tmp_path: Path) -> None:
    calls = []

    def runner(argv, **kwargs):
        calls.append(argv)
        import subprocess

        return subprocess.CompletedProcess(argv, 0, "", "")

    config = AgentConfig(
        dockerd_binary="sh",
        dockerd_launch="auto",
        systemd_dropin_path=tmp_path / "d" / "p.conf",
        daemon_json_path=tmp_path / "daemon.json",
    )
    runtime = DockerRuntime(config, StateStore(tmp_path / "s"), runner=runner, systemd_present=True)
    assert runtime.launch_mode() == "systemd"
    runtime.start()
    assert "ExecStart=\n" in (tmp_path / "d" / "p.conf").read_text()
    assert ["systemctl", "daemon-reload"] in calls
    assert ["systemctl", "restart", "docker.service"] in calls
    runtime.stop()
    assert calls[-1] == ["systemctl", "stop", "docker.service"]
    assert str(tmp_path / "d" / "p.conf") in runtime.remove_files()
    assert calls[-1] == ["systemctl", "daemon-reload"]


def test_install_runs_only_when_dockerd_is_missing(tmp_path: Path) -> None:
    fake = tmp_path / "bin" / "dockerd-fake"
    config = AgentConfig(
        dockerd_binary=str(fake),
        docker_install_command=f"mkdir -p {fake.parent} && printf '#!/bin/sh\\necho Docker version 20.10.24' "
        f"> {fake} && chmod +x {fake} && echo ran >> {tmp_path / 'installs'}",
    )
    runtime = DockerRuntime(config, StateStore(tmp_path / "s"))
    assert runtime.ensure_installed() is True
    assert runtime.ensure_installed() is False
    assert (tmp_path / "installs").read_text() == "ran\n"
    assert runtime.engine_version() == "20.10.24"


def test_failed_install_is_reported(tmp_path: Path) -> None:
    config = AgentConfig(
        dockerd_binary=str(tmp_path / "nope"), docker_install_command="echo no mirror >&2; exit 100"
    )
    with pytest.raises(DockerRuntimeError, match="exit 100.*no mirror"):
        DockerRuntime(config, StateStore(tmp_path / "s")).ensure_installed()


def test_write_tls_is_0600_in_a_0700_dir(tmp_path: Path, test_ca) -> None:
    config = AgentConfig(docker_tls_dir=tmp_path / "etc" / "powernode")
    runtime = DockerRuntime(config, StateStore(tmp_path / "s"))
    key, cert = test_ca.server_keypair(OVERLAY)
    runtime.write_tls(key_pem=key, cert_pem=cert, chain_pem=test_ca.pem)
    assert stat.S_IMODE(os.stat(config.docker_tls_dir).st_mode) == 0o700
    for name in ("key.pem", "cert.pem", "ca.pem"):
        assert stat.S_IMODE(os.stat(config.docker_tls_dir / name).st_mode) == 0o600


# --- the readiness probe against small TLS servers on loopback -------------------------------------------


@pytest.fixture
def tls_server(tmp_path: Path, test_ca) -> Iterator:
    """Start a one-connection-at-a-time TLS server on 127.0.0.1 with the given cert and client policy."""
    servers = []

    def start(*, require_client_cert: bool, cert_ip: str = "127.0.0.1", ca=test_ca) -> int:
        key, cert = ca.server_keypair(cert_ip)
        (tmp_path / "srv-key.pem").write_bytes(key)
        (tmp_path / "srv-cert.pem").write_bytes(cert)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tmp_path / "srv-cert.pem", tmp_path / "srv-key.pem")
        if require_client_cert:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(cadata=test_ca.pem.decode())
        listener = socket.create_server(("127.0.0.1", 0))
        stop = threading.Event()

        def serve() -> None:
            listener.settimeout(0.2)
            while not stop.is_set():
                try:
                    conn, _ = listener.accept()
                except OSError:
                    continue
                try:
                    with context.wrap_socket(conn, server_side=True) as tls:
                        tls.recv(1024)
                        tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
                except (ssl.SSLError, OSError):
                    pass

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        servers.append((listener, stop, thread))
        return listener.getsockname()[1]

    yield start
    for listener, stop, thread in servers:
        stop.set()
        thread.join()
        listener.close()


def test_probe_passes_when_a_client_cert_is_required(tls_server, test_ca) -> None:
    port = tls_server(require_client_cert=True)
    probe_tls_listener("127.0.0.1", test_ca.pem.decode(), port=port)


def test_probe_fails_when_the_daemon_answers_without_client_cert(tls_server, test_ca) -> None:
    port = tls_server(require_client_cert=False)
    with pytest.raises(DockerRuntimeError, match="tlsverify is off"):
        probe_tls_listener("127.0.0.1", test_ca.pem.decode(), port=port)


def test_probe_fails_on_a_cert_for_another_address(tls_server, test_ca) -> None:
    port = tls_server(require_client_cert=True, cert_ip="127.0.0.2")
    with pytest.raises(DockerRuntimeError, match="do not trust"):
        probe_tls_listener("127.0.0.1", test_ca.pem.decode(), port=port)


def test_probe_fails_on_a_cert_from_another_ca(tls_server, test_ca) -> None:
    from pnagent_fakes import TestCa

    port = tls_server(require_client_cert=True, ca=TestCa("someone else"))
    with pytest.raises(DockerRuntimeError, match="do not trust"):
        probe_tls_listener("127.0.0.1", test_ca.pem.decode(), port=port)


def test_probe_fails_when_nothing_listens(test_ca) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DockerRuntimeError, match="nothing answers"):
        probe_tls_listener("127.0.0.1", test_ca.pem.decode(), port=port, timeout_s=2)


def _fake_dockerd(tmp_path: Path, version: str, validate_exit: int) -> Path:
    script = tmp_path / "bin" / "dockerd"
    script.parent.mkdir(exist_ok=True)
    script.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = --version ]; then echo "Docker version {version}, build x"; exit 0; fi\n'
        f'if [ "$1" = --validate ]; then echo "$@" >> {tmp_path / "validate-calls"}; '
        f'echo "unknown key: bogus" >&2; exit {validate_exit}; fi\n'
        "exit 64\n"
    )
    script.chmod(0o755)
    return script


@pytest.mark.parametrize(("version", "validate_exit", "calls"), [("25.0.3", 0, 1), ("20.10.24", 0, 0)])
def test_dockerd_validate_runs_on_engines_that_have_it(
    tmp_path, tls_dir, version, validate_exit, calls
) -> None:
    config = AgentConfig(
        dockerd_binary=str(_fake_dockerd(tmp_path, version, validate_exit)),
        docker_tls_dir=tls_dir,
        daemon_json_path=tmp_path / "daemon.json",
    )
    runtime = DockerRuntime(config, StateStore(tmp_path / "s"))
    runtime.write_daemon_json(PLATFORM_CONFIG)
    runtime.validate(allowed_addresses=[OVERLAY])
    made = (tmp_path / "validate-calls").read_text().splitlines() if calls else []
    assert len(made) == calls
    if calls:
        assert made[0] == f"--validate --config-file {tmp_path / 'daemon.json'}"


def test_dockerd_validate_refusal_is_a_config_error(tmp_path, tls_dir) -> None:
    config = AgentConfig(
        dockerd_binary=str(_fake_dockerd(tmp_path, "25.0.3", 1)),
        docker_tls_dir=tls_dir,
        daemon_json_path=tmp_path / "daemon.json",
    )
    runtime = DockerRuntime(config, StateStore(tmp_path / "s"))
    runtime.write_daemon_json(PLATFORM_CONFIG)
    with pytest.raises(DaemonConfigError, match="unknown key: bogus"):
        runtime.validate(allowed_addresses=[OVERLAY])


def test_a_dockerd_running_with_our_daemon_json_is_adopted_not_started_twice(tmp_path: Path) -> None:
    # The pid file names nothing alive (a crash between launch and write, or a wrapper gone), yet a dockerd
    # with our daemon.json runs: it is adopted, so no second dockerd is started on the same exec-root.
    import subprocess
    import sys

    config = AgentConfig(
        state_dir=tmp_path / "s", daemon_json_path=tmp_path / "daemon.json", dockerd_launch="child"
    )
    runtime = DockerRuntime(config, StateStore(tmp_path / "s"))
    fake = subprocess.Popen(
        ["bash", "-c",
         f'exec -a dockerd {sys.executable} -c "import time; time.sleep(60)" --config-file "$0"',
         str(runtime.daemon_json)]
    )  # fmt: skip
    try:
        import time

        deadline = time.monotonic() + 10
        while b"dockerd" not in Path(f"/proc/{fake.pid}/cmdline").read_bytes().split(b"\0", 1)[0]:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert runtime._child_pid() == fake.pid
        assert runtime.store.read("dockerd.pid").strip() == str(fake.pid).encode()
        other_config = AgentConfig(
            state_dir=tmp_path / "o", daemon_json_path=tmp_path / "other.json", dockerd_launch="child"
        )
        other = DockerRuntime(other_config, StateStore(tmp_path / "o"))
        assert other._child_pid() is None  # another daemon.json: not ours
    finally:
        fake.kill()
        fake.wait()
