"""The managed dockerd on this node: install, TLS files, daemon.json, validation, start/stop, readiness."""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import re
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from . import state as st
from .config import PROTECTED_DAEMON_KEYS, AgentConfig

log = logging.getLogger(__name__)

DOCKER_TLS_PORT = 2376
TLS_CA = "ca.pem"
TLS_CERT = "cert.pem"
TLS_KEY = "key.pem"
SYSTEMD_UNIT = "docker.service"
STOCK_UNIT_PATHS = (
    Path("/lib/systemd/system/docker.service"),
    Path("/usr/lib/systemd/system/docker.service"),
)
FIRST_ENGINE_WITH_VALIDATE = 23


def _live_dockerd(raw: bytes | str | None) -> int | None:
    """The pid in ``raw`` if it is a live (not zombie) process whose command line names dockerd."""
    if not raw:
        return None
    try:
        pid = int(raw.strip())
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (ValueError, OSError):
        return None
    if stat.rsplit(")", 1)[-1].split()[0] == "Z" or b"dockerd" not in cmdline:
        return None  # gone, or the pid was reused by something else
    return pid


class DockerRuntimeError(Exception):
    """dockerd could not be installed, configured, started, reached or stopped."""


class DaemonConfigError(DockerRuntimeError):
    """daemon.json is not one the agent is willing to run: it would expose dockerd or cannot work."""


# --- daemon.json ------------------------------------------------------------------------------------------


def build_daemon_json(
    platform_config: dict[str, Any], *, tls_dir: Path, extras: dict[str, Any]
) -> dict[str, Any]:
    """The platform's daemon_config with the TLS paths pointing into ``tls_dir`` and local extras merged in.

    Extras (data-root, exec-root, pidfile, bip, insecure-registries, ...) never replace ``hosts`` or the TLS
    switches: the platform owns where and how the daemon listens.
    """
    if not isinstance(platform_config, dict):
        raise DaemonConfigError("the platform's daemon_config is not a JSON object")
    clash = PROTECTED_DAEMON_KEYS & set(extras)
    if clash:
        raise DaemonConfigError(f"local daemon.json extras may not set {', '.join(sorted(clash))}")
    merged = {**extras, **platform_config}
    tls_dir = Path(tls_dir)
    merged["tlscacert"] = str(tls_dir / TLS_CA)
    merged["tlscert"] = str(tls_dir / TLS_CERT)
    merged["tlskey"] = str(tls_dir / TLS_KEY)
    return merged


def parse_tcp_host(host: str) -> tuple[ipaddress.IPv6Address, int]:
    """``tcp://[addr]:port`` -> (addr, port); anything else is a DaemonConfigError."""
    if not isinstance(host, str):
        raise DaemonConfigError(f"daemon.json host {host!r} is not a string")
    parts = urlsplit(host)
    if parts.scheme != "tcp":
        raise DaemonConfigError(f"daemon.json host {host!r} is not tcp:// (unix sockets and fds are refused)")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise DaemonConfigError(f"daemon.json host {host!r} has trailing parts")
    try:
        addr = ipaddress.ip_address(parts.hostname or "")
        port = parts.port
    except ValueError as exc:
        raise DaemonConfigError(f"daemon.json host {host!r} is not an IP address and port: {exc}") from None
    if not isinstance(addr, ipaddress.IPv6Address):
        raise DaemonConfigError(f"daemon.json host {host!r} is not the IPv6 overlay address")
    if addr.is_unspecified or addr.is_loopback or addr.is_multicast or addr.is_link_local:
        raise DaemonConfigError(f"daemon.json host {host!r} is not a unicast overlay address")
    return addr, port or 0


def check_daemon_json(path: Path, *, allowed_addresses: Iterable[str] | None = None) -> dict[str, Any]:
    """Our own validation, run on every engine: the daemon listens only on one overlay /128, port 2376,
    publishes ports by default on that same /128 (``ip``), with TLS and client verification, and its key
    matches its certificate. Returns the parsed config."""
    try:
        config = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DaemonConfigError(f"{path}: {exc}") from None
    if not isinstance(config, dict):
        raise DaemonConfigError(f"{path} is not a JSON object")
    hosts = config.get("hosts")
    if not isinstance(hosts, list) or len(hosts) != 1:
        raise DaemonConfigError(
            f"{path}: hosts must list exactly one tcp://[overlay]:{DOCKER_TLS_PORT} address"
        )
    addr, port = parse_tcp_host(hosts[0])
    if port != DOCKER_TLS_PORT:
        raise DaemonConfigError(f"{path}: dockerd must listen on port {DOCKER_TLS_PORT}, not {port}")
    if allowed_addresses is not None:
        allowed = {ipaddress.IPv6Address(a) for a in allowed_addresses}
        if addr not in allowed:
            raise DaemonConfigError(f"{path}: {addr} is not an overlay address of this node")
    # Without ``ip`` (or with another one) a port published from the Docker CLI would listen on every
    # interface of the node, outside the SDWAN.
    try:
        default_ip = ipaddress.ip_address(config.get("ip") if isinstance(config.get("ip"), str) else "")
    except ValueError:
        default_ip = None
    if default_ip != addr:
        raise DaemonConfigError(
            f"{path}: ip (the default address of published ports) must be the overlay address {addr}, "
            f"not {config.get('ip')!r}"
        )
    for switch in ("tls", "tlsverify"):
        if config.get(switch) is not True:
            raise DaemonConfigError(f"{path}: {switch} must be true")
    files = {}
    for key in ("tlscacert", "tlscert", "tlskey"):
        value = config.get(key)
        if not isinstance(value, str) or not Path(value).is_file():
            raise DaemonConfigError(f"{path}: {key} {value!r} is not an existing file")
        files[key] = Path(value)
    try:
        cert = x509.load_pem_x509_certificate(files["tlscert"].read_bytes())
        key = serialization.load_pem_private_key(files["tlskey"].read_bytes(), password=None)
        x509.load_pem_x509_certificates(files["tlscacert"].read_bytes())
    except ValueError as exc:
        raise DaemonConfigError(f"{path}: unreadable TLS material: {exc}") from None
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(*spki) != cert.public_key().public_bytes(*spki):
        raise DaemonConfigError(f"{path}: the key in {files['tlskey']} does not match {files['tlscert']}")
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        ips = sans.get_values_for_type(x509.IPAddress)
    except x509.ExtensionNotFound:
        ips = []
    if addr not in ips:
        raise DaemonConfigError(f"{path}: the server certificate does not name {addr} in its IP SANs")
    return config


def parse_engine_version(text: str) -> str:
    """``Docker version 20.10.24+dfsg1, build 5d6db84`` -> ``20.10.24+dfsg1``."""
    match = re.search(r"version\s+v?([0-9][^\s,]*)", text)
    if not match:
        raise DockerRuntimeError(f"cannot read an engine version from {text.strip()!r}")
    return match.group(1)


def engine_major(version: str) -> int:
    return int(re.match(r"\d+", version).group(0))  # type: ignore[union-attr]


def systemd_dropin_text(stock_unit: str | None, dockerd: str, daemon_json: Path) -> str:
    """The drop-in that clears ExecStart and sets it again without ``-H`` (which conflicts with ``hosts``)."""
    argv: list[str] = []
    if stock_unit:
        for line in stock_unit.splitlines():
            if line.startswith("ExecStart=") and line.strip() != "ExecStart=":
                argv = shlex.split(line[len("ExecStart=") :])
    if not argv:
        argv = [dockerd]
    kept: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg in ("-H", "--host"):
            skip = True
            continue
        if arg.startswith(("-H=", "--host=")) or (arg.startswith("-H") and len(arg) > 2):
            continue
        if arg.startswith("--config-file"):
            skip = arg == "--config-file"
            continue
        kept.append(arg)
    kept[1:1] = ["--config-file", str(daemon_json)]
    return (
        "# Written by powernode-agent: daemon.json sets hosts, so the unit must not pass -H.\n"
        "[Service]\nExecStart=\nExecStart=" + " ".join(kept) + "\n"
    )


# --- readiness ------------------------------------------------------------------------------------------


def probe_tls_listener(
    address: str, chain_pem: str, *, port: int = DOCKER_TLS_PORT, timeout_s: float = 5.0
) -> None:
    """Check, from the node, that dockerd serves TLS on [address]:port the way operators will meet it.

    The agent holds no client certificate, so it cannot call the API; it checks what it can without one:
    the TLS 1.3 handshake verifies the server certificate against the platform's chain and the overlay
    address (IP SAN), and the daemon then refuses our certificate-less request with a
    ``certificate_required`` / ``bad_certificate`` alert, which proves ``tlsverify`` is on.
    Raises DockerRuntimeError otherwise.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.load_verify_locations(cadata=chain_pem)
    context.check_hostname = True
    try:
        raw = socket.create_connection((address, port), timeout=timeout_s)
    except OSError as exc:
        raise DockerRuntimeError(f"nothing answers on [{address}]:{port}: {exc}") from None
    with raw:
        try:
            tls = context.wrap_socket(raw, server_hostname=address)
        except ssl.SSLCertVerificationError as exc:
            raise DockerRuntimeError(
                f"[{address}]:{port} presents a certificate we do not trust: {exc}"
            ) from None
        except (ssl.SSLError, OSError) as exc:
            raise DockerRuntimeError(f"TLS handshake with [{address}]:{port} failed: {exc}") from None
        with tls:
            # Wait for the verdict before sending anything: a request the server never reads makes its
            # close a TCP reset, which can overtake the alert we are waiting for.
            tls.settimeout(min(timeout_s, 3.0))
            try:
                data = tls.recv(64)
            except TimeoutError:
                # No verdict: the server is waiting for a request, so it accepted us without a certificate.
                try:
                    tls.settimeout(timeout_s)
                    tls.sendall(b"GET /version HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n")
                    data = tls.recv(64)
                except (ssl.SSLError, OSError) as exc:
                    if _is_client_cert_alert(exc):
                        return
                    raise DockerRuntimeError(f"[{address}]:{port} dropped the connection: {exc}") from None
            except (ssl.SSLError, OSError) as exc:
                if _is_client_cert_alert(exc):
                    return
                raise DockerRuntimeError(f"[{address}]:{port} dropped the connection: {exc}") from None
    if data:
        raise DockerRuntimeError(
            f"[{address}]:{port} answered without a client certificate: tlsverify is off"
        )
    raise DockerRuntimeError(
        f"[{address}]:{port} closed the connection without asking for a client certificate"
    )


def _is_client_cert_alert(exc: BaseException) -> bool:
    # Go before 1.21 (Debian's 20.10 engine) sends bad_certificate, newer Go certificate_required; we sent
    # no certificate at all, so either alert means "a client certificate is required".
    text = str(exc).upper()
    return isinstance(exc, ssl.SSLError) and ("CERTIFICATE_REQUIRED" in text or "BAD_CERTIFICATE" in text)


# --- the runtime ----------------------------------------------------------------------------------------


class DockerRuntime:
    """Owns the node's dockerd: files, process (systemd unit or supervised child) and readiness."""

    def __init__(
        self,
        config: AgentConfig,
        store: st.StateStore,
        *,
        runner: Callable[..., subprocess.CompletedProcess] = subprocess.run,
        systemd_present: bool | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self._run = runner
        self._systemd_present = systemd_present
        self._lock = threading.RLock()
        self._proc: subprocess.Popen | None = None
        self.want_running = False
        self._restarts = 0
        self._next_restart_at = 0.0
        self._keep_live_containerd = False  # set during restart_keeping_containers()

    # paths
    @property
    def tls_dir(self) -> Path:
        return Path(self.config.docker_tls_dir)

    @property
    def daemon_json(self) -> Path:
        return Path(self.config.daemon_json_path)

    def dockerd_path(self) -> str | None:
        return shutil.which(self.config.dockerd_binary)

    def _require_dockerd(self) -> str:
        path = self.dockerd_path()
        if not path:
            raise DockerRuntimeError(f"dockerd binary {self.config.dockerd_binary!r} not found")
        return path

    # install
    def ensure_installed(self) -> bool:
        """Run the install command when dockerd is missing; True if it had to install."""
        if self.dockerd_path():
            return False
        command = self.config.docker_install_command
        log.info("docker: dockerd missing, installing with: %s", command)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        result = self._run(["sh", "-c", command], capture_output=True, text=True, env=env)
        if result.returncode != 0:
            tail = (result.stderr or result.stdout).strip()[-800:]
            raise DockerRuntimeError(f"install command failed (exit {result.returncode}): {tail}")
        if not self.dockerd_path():
            raise DockerRuntimeError(
                f"install command ran but {self.config.dockerd_binary!r} is still missing"
            )
        return True

    def engine_version(self) -> str:
        result = self._run([self._require_dockerd(), "--version"], capture_output=True, text=True)
        if result.returncode != 0:
            raise DockerRuntimeError(f"dockerd --version failed: {result.stderr.strip()}")
        return parse_engine_version(result.stdout)

    # files
    def write_tls(
        self, *, key_pem: bytes, cert_pem: bytes, chain_pem: bytes, client_ca_pem: bytes | None = None
    ) -> None:
        """Put the daemon's TLS files in place, all 0600 in a 0700 directory.

        ``ca.pem`` (tlscacert: whom dockerd accepts as a client) is ``client_ca_pem``, the network's client
        CA alone, when the platform sent one; a platform that predates per-network client CAs sends only
        ``chain_pem``, which then serves as before.
        """
        self.tls_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.tls_dir, 0o700)
        st.atomic_write(self.tls_dir / TLS_KEY, key_pem)
        st.atomic_write(self.tls_dir / TLS_CERT, cert_pem)
        st.atomic_write(self.tls_dir / TLS_CA, client_ca_pem or chain_pem)

    def write_daemon_json(self, platform_config: dict[str, Any]) -> dict[str, Any]:
        merged = build_daemon_json(
            platform_config, tls_dir=self.tls_dir, extras=self.config.daemon_json_extras
        )
        self.daemon_json.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        st.atomic_write(self.daemon_json, (json.dumps(merged, indent=2, sort_keys=True) + "\n").encode())
        log.info("docker: wrote %s", self.daemon_json)
        return merged

    def validate(self, *, allowed_addresses: Iterable[str] | None = None) -> dict[str, Any]:
        """Our policy check always; ``dockerd --validate`` too on engines that have it (23+)."""
        config = check_daemon_json(self.daemon_json, allowed_addresses=allowed_addresses)
        version = self.engine_version()
        if engine_major(version) >= FIRST_ENGINE_WITH_VALIDATE:
            result = self._run(
                [self._require_dockerd(), "--validate", "--config-file", str(self.daemon_json)],
                capture_output=True,
                text=True,
            )
            if result.returncode != 0:
                raise DaemonConfigError(
                    f"dockerd --validate refused {self.daemon_json}: "
                    f"{(result.stderr or result.stdout).strip()}"
                )
        log.info("docker: %s valid for engine %s", self.daemon_json, version)
        return config

    def remove_files(self) -> list[str]:
        """Remove key, cert, chain and daemon.json (and the systemd drop-in); returns what was removed."""
        removed = []
        for path in (
            self.tls_dir / TLS_KEY,
            self.tls_dir / TLS_CERT,
            self.tls_dir / TLS_CA,
            self.daemon_json,
        ):
            if st.remove_file(path):
                removed.append(str(path))
        dropin = Path(self.config.systemd_dropin_path)
        if self.launch_mode() == "systemd" and st.remove_file(dropin):
            # Back to the stock unit, so a later start does not look for a daemon.json that is gone.
            removed.append(str(dropin))
            self._systemctl("daemon-reload", check=False)
        names = (st.DOCKER_KEY, st.DOCKER_RENEW_KEY, st.DOCKER_CERT, st.DOCKER_CHAIN, st.DOCKER_CLIENT_CA)
        for name in (*names, st.DAEMON_CONFIG):
            if self.store.remove(name):
                removed.append(str(self.store.path(name)))
        try:
            self.tls_dir.rmdir()
        except OSError:
            pass
        return removed

    # process
    def launch_mode(self) -> str:
        mode = self.config.dockerd_launch
        if mode != "auto":
            return mode
        present = self._systemd_present
        if present is None:
            present = Path("/run/systemd/system").is_dir()
        return "systemd" if present else "child"

    def start(self) -> None:
        with self._lock:
            self.want_running = True
            if self.launch_mode() == "systemd":
                self._start_systemd()
            else:
                self._start_child()

    def restart_keeping_containers(self) -> None:
        """Stop and start dockerd so it loads new TLS files (a certificate renewal).

        daemon.json has ``live-restore: true``: the containers keep running while dockerd is down. A live
        containerd the old child dockerd left behind is kept for the new one to reattach to (only a defunct
        one is cleared), so its containers' shims stay reachable.
        """
        with self._lock:
            self.stop()
            self._keep_live_containerd = True
            try:
                self.start()
            finally:
                self._keep_live_containerd = False

    def stop(self, *, timeout_s: float = 30.0) -> None:
        with self._lock:
            self.want_running = False
            if self.launch_mode() == "systemd":
                self._systemctl("stop", SYSTEMD_UNIT)
            else:
                self._stop_child(timeout_s)

    def is_running(self) -> bool:
        if self.launch_mode() == "systemd":
            return self._run(["systemctl", "is-active", "--quiet", SYSTEMD_UNIT]).returncode == 0
        return self._child_pid() is not None

    def _systemctl(self, *args: str, check: bool = True) -> None:
        result = self._run(["systemctl", *args], capture_output=True, text=True)
        if check and result.returncode != 0:
            raise DockerRuntimeError(f"systemctl {' '.join(args)} failed: {result.stderr.strip()}")

    def _start_systemd(self) -> None:
        stock = next((p.read_text() for p in STOCK_UNIT_PATHS if p.is_file()), None)
        dropin = Path(self.config.systemd_dropin_path)
        dropin.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        st.atomic_write(
            dropin, systemd_dropin_text(stock, self._require_dockerd(), self.daemon_json).encode(), mode=0o644
        )
        self._systemctl("daemon-reload")
        self._systemctl("enable", SYSTEMD_UNIT, check=False)
        self._systemctl("restart", SYSTEMD_UNIT)
        log.info("docker: started %s through systemd (drop-in %s)", SYSTEMD_UNIT, dropin)

    def _child_pid(self) -> int | None:
        """The supervised dockerd's pid if it is alive: our Popen, or one a previous agent run left behind."""
        if self._proc is not None:
            if self._proc.poll() is None:
                return self._proc.pid
            self._proc = None
            return None
        raw = self.store.read(st.DOCKERD_PID)
        pid = _live_dockerd(raw)
        if pid is None:
            # The pid file may name a wrapper that is gone or be missing (a crash between launch and write):
            # a dockerd running with our daemon.json is ours all the same. Adopt it rather than start a second
            # one on the same exec-root (two dockerds fight over one containerd).
            pid = self._dockerd_with_our_config()
            if pid is not None:
                self.store.write(st.DOCKERD_PID, f"{pid}\n")
                log.info("docker: adopted the dockerd running with %s (pid %s)", self.daemon_json, pid)
        return pid

    def _dockerd_with_our_config(self) -> int | None:
        wanted = f"--config-file\0{self.daemon_json}\0".encode()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes() + b"\0"
            except OSError:
                continue
            if wanted in cmdline and b"dockerd" in cmdline.split(b"\0", 1)[0] and _live_dockerd(entry.name):
                return int(entry.name)
        return None

    def _start_child(self) -> None:
        if self._child_pid() is not None:
            log.info("docker: dockerd already running (pid %s)", self._child_pid())
            return
        self._reap_leftovers()
        argv = [
            *self.config.dockerd_command_prefix,
            self._require_dockerd(),
            "--config-file",
            str(self.daemon_json),
        ]
        self.store.ensure_dir()
        log_path = self.store.path(st.DOCKERD_LOG)
        fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            # Own session: a signal to the agent's terminal does not hit dockerd, and we can kill its group.
            self._proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=fd, stderr=fd, start_new_session=True, close_fds=True
            )
        finally:
            os.close(fd)
        self.store.write(st.DOCKERD_PID, f"{self._proc.pid}\n")
        log.info("docker: started dockerd as a child (pid %s, log %s)", self._proc.pid, log_path)

    def _managed_containerd(self) -> tuple[Path, int, bool] | None:
        """(pidfile, pid, is_zombie) for the containerd a child dockerd started under its exec-root."""
        try:
            exec_root = json.loads(self.daemon_json.read_text()).get("exec-root") or "/var/run/docker"
            pidfile = Path(exec_root) / "containerd" / "containerd.pid"
            pid = int(pidfile.read_text().strip())
            stat = Path(f"/proc/{pid}/stat").read_text()
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError, AttributeError):
            return None
        zombie = stat.rsplit(")", 1)[-1].split()[0] == "Z"
        # A process in the middle of exiting has an empty cmdline: still ours, and dockerd still sees it.
        if not zombie and cmdline and b"containerd" not in cmdline:
            return None  # pid reused by something else
        return pidfile, pid, zombie

    def _reap_leftovers(self, timeout_s: float = 10.0) -> None:
        """Clear what a crashed dockerd left: its containerd, still exiting or a zombie nobody reaps.

        dockerd 20.10 finds the old containerd's pid alive (a zombie counts), waits for it to serve, and
        gives up ("timeout waiting for containerd to start"). An orphan's zombie stays as long as PID 1 does
        not reap it (it does not on these machines), so we stop a live one and forget a zombie's pidfile.
        """
        for sig in (None, signal.SIGTERM, signal.SIGKILL):
            found = self._managed_containerd()
            if found is None:
                return
            pidfile, pid, zombie = found
            if zombie:
                log.warning("docker: forgetting the previous dockerd's defunct containerd (pid %s)", pid)
                st.remove_file(pidfile)
                return
            if self._keep_live_containerd:
                log.info("docker: keeping the previous dockerd's containerd (pid %s) for live-restore", pid)
                return
            if sig is not None:
                log.warning("docker: sending %s to the previous dockerd's containerd (pid %s)", sig.name, pid)
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    return
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                found = self._managed_containerd()
                if found is None or found[2]:
                    break
                time.sleep(0.1)

    def _stop_child(self, timeout_s: float) -> None:
        pid = self._child_pid()
        if pid is None:
            self.store.remove(st.DOCKERD_PID)
            return
        log.info("docker: stopping dockerd (pid %s)", pid)
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self._child_pid() is not None:
            time.sleep(0.2)
        if self._child_pid() is not None:
            log.warning("docker: dockerd (pid %s) ignored SIGTERM, killing its process group", pid)
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            if self._proc is not None:
                self._proc.wait(timeout=10)
            while self._child_pid() is not None and time.monotonic() < deadline + 10:
                time.sleep(0.2)
        self._proc = None
        self.store.remove(st.DOCKERD_PID)

    def dockerd_log_tail(self, lines: int = 15) -> str:
        """The end of dockerd.log without gRPC reconnect chatter, which buries the line that matters."""
        raw = self.store.read(st.DOCKERD_LOG) or b""
        kept = [line for line in raw.decode(errors="replace").splitlines() if "module=grpc" not in line]
        return "\n".join(kept[-lines:])

    def supervise_once(self) -> bool:
        """Restart a crashed child dockerd (with backoff); True when it restarted it."""
        with self._lock:
            if not self.want_running or self.launch_mode() != "child" or self._child_pid() is not None:
                return False
            now = time.monotonic()
            if now < self._next_restart_at:
                return False
            self._restarts += 1
            self._next_restart_at = now + min(30.0, 2.0 ** min(self._restarts, 5))
            log.warning(
                "docker: dockerd died, restarting (restart %d); log tail:\n%s",
                self._restarts,
                self.dockerd_log_tail(5),
            )
            self._start_child()
            return True

    def wait_ready(self, address: str, chain_pem: str, *, timeout_s: float | None = None) -> str:
        """Wait until dockerd serves mutual TLS on [address]:2376; returns the engine version."""
        timeout_s = self.config.ready_timeout_s if timeout_s is None else timeout_s
        deadline = time.monotonic() + timeout_s
        last_error = "not tried"
        while True:
            if not self.is_running():
                raise DockerRuntimeError(f"dockerd is not running; log tail:\n{self.dockerd_log_tail()}")
            try:
                probe_tls_listener(address, chain_pem, timeout_s=min(5.0, timeout_s))
                break
            except DockerRuntimeError as exc:
                last_error = str(exc)
            if time.monotonic() >= deadline:
                raise DockerRuntimeError(
                    f"dockerd not ready after {timeout_s:.0f}s: {last_error}; "
                    f"log tail:\n{self.dockerd_log_tail()}"
                )
            time.sleep(0.5)
        version = self.engine_version()
        log.info("docker: dockerd %s serves mutual TLS on [%s]:%d", version, address, DOCKER_TLS_PORT)
        return version


class DockerSupervisor(threading.Thread):
    """Background thread that keeps a child dockerd alive while the agent runs."""

    def __init__(self, runtime: DockerRuntime, *, interval_s: float = 1.0) -> None:
        super().__init__(name="dockerd-supervisor", daemon=True)
        self.runtime = runtime
        self.interval_s = interval_s
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.interval_s):
            try:
                self.runtime.supervise_once()
            except Exception:  # the supervisor must outlive one failed restart
                log.exception("docker: supervisor could not restart dockerd")

    def stop(self) -> None:
        self._stop_event.set()
