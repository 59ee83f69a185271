"""``Lab``: composes the primitives into machines on one host — the platform namespace (hub,
registry, later the server), node and workstation namespaces cabled to it by ULA veth links.

Underlay: ``<underlay>::1/128`` is the platform's service address (registry, hub endpoints, server);
host N is cabled to the platform by ``<underlay>:N::/64`` (platform ::1, host ::2) and routes the
whole underlay /48 through it. The platform forwards only inside an overlay network, so hosts never
reach each other over the underlay.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from lab.dockerd import DockerdTls, LabDockerd
from lab.hub import HubNetwork, LabHub
from lab.image import build_and_push
from lab.netns import Netns, add_route, check_ifname, connect
from lab.pki import KeyPair, LabCa
from lab.proc import LabError, write_private
from lab.registry import PRIVATE_REGISTRY_PORT, REGISTRY_NAME, LabRegistry, bcrypt_htpasswd
from lab.sandbox import sandbox_argv, write_etc_docker, write_hosts_file
from lab.teardown import OWNER_FILE, down, lab_dir
from lab.wireguard import WgInterface, WgKey, render_wg_quick, spoke_up

UNDERLAY = "fd70:6e6c:6162::/48"  # "pnlab" in the ULA global ID
PLATFORM_NAME = "platform.powernode.internal"
HUB_BASE_PORT = 51820
SERVER_PORT = 8000  # the platform server's port: the one port overlay peers may reach on the hub's addresses
AGENT_DIR = Path(__file__).resolve().parents[1] / "agent"
_PREFIX_RE = re.compile(r"^[a-z][a-z0-9]{1,5}-$")


@dataclass
class LabHost:
    """A machine of the lab: its namespace and its underlay address."""

    role: str
    ns: Netns
    underlay_address: str
    platform_side_address: str


class Lab:
    """One lab instance; every name it makes starts with ``prefix``. Use as a context manager."""

    def __init__(self, prefix: str, *, underlay: str = UNDERLAY) -> None:
        if not _PREFIX_RE.match(prefix):
            raise LabError(f"lab prefix must look like 'pnlab-' (2-6 lowercase letters/digits then '-'): {prefix!r}")
        self.prefix = prefix
        self.dir: Path = lab_dir(prefix)
        self.underlay = ipaddress.IPv6Network(underlay)
        self.service_address = str(self.underlay[1])
        self.platform = Netns(f"{prefix}platform")
        self.hub = LabHub(self.platform, endpoint_address=self.service_address, workdir=self.dir / "hub",
                          interface_prefix=f"{prefix}h", allow_ports=[SERVER_PORT])
        self.hosts: dict[str, LabHost] = {}
        self.spokes: dict[tuple[str, str], WgInterface] = {}
        self.dockerds: dict[str, LabDockerd] = {}
        self.registry: LabRegistry | None = None
        self.private_registry: LabRegistry | None = None
        self.registry_ca_pem: str | None = None
        self.image_ref: str | None = None
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    # --- lifecycle ---------------------------------------------------------------------------
    def up(self) -> Lab:
        """Create the platform namespace with its service address and the hub's firewall."""
        if self.platform.exists() or self.dir.exists():
            raise LabError(f"a lab with prefix {self.prefix} exists already: "
                           f"`python -m lab down --prefix {self.prefix}`")
        self.dir.mkdir(mode=0o700, parents=True)
        # Lets a later run sweep this lab if this process dies without cleaning up (teardown.stale_prefixes).
        (self.dir / OWNER_FILE).write_text(f"{os.getpid()}\n")
        self.platform.create()
        self.platform.add_address("lo", f"{self.service_address}/128")
        # The platform routes (hub): the lab's underlay wall (forward policy drop but for hub interfaces)
        # exists before forwarding is on, so hosts never reach each other over the underlay cables.
        self.hub.ensure_underlay_firewall()
        return self

    def close(self) -> dict[str, list[str]]:
        """Stop everything in order, then sweep by prefix; returns leftovers (empty when clean)."""
        errors: list[str] = []
        for name in list(self.processes):
            _try(lambda name=name: self.stop_process(name), errors)
        for dockerd in list(self.dockerds.values()):
            _try(dockerd.stop, errors)
        if self.private_registry:
            _try(self.private_registry.stop, errors)
        if self.registry:
            _try(self.registry.stop, errors)
        for spoke in list(self.spokes.values()):
            _try(spoke.stop, errors)
        _try(self.hub.stop, errors)
        self.dockerds.clear()
        self.spokes.clear()
        left = down(self.prefix)
        if errors:
            left["errors"] = errors
        return left

    def __enter__(self) -> Lab:
        return self.up()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- machines and cables -------------------------------------------------------------------
    def add_host(self, role: str) -> LabHost:
        """A new namespace ``<prefix><role>`` cabled to the platform over its own ULA /64."""
        if role in self.hosts:
            raise LabError(f"host {role} exists")
        index = len(self.hosts) + 1
        ns = Netns(f"{self.prefix}{role}").create()
        subnet = f"{self.underlay.network_address + (index << 64)}/64"
        link = connect(self.platform, check_ifname(f"{self.prefix}u{index}"), ns, "uplink", subnet)
        add_route(ns, str(self.underlay), via=link.a_address)
        host = LabHost(role, ns, link.b_address, link.a_address)
        self.hosts[role] = host
        return host

    def add_network(self, name: str, prefix: str) -> HubNetwork:
        """A network on the hub without a platform (the product hub's ``apply``): interface
        ``<prefix>h<hex>``, listening on all addresses (spokes dial the service address)."""
        port = HUB_BASE_PORT + len(self.hub.networks)
        return self.hub.add_network(name, prefix=prefix, listen_port=port)

    def start_hub(self, *, platform_url: str, hub_token: str) -> subprocess.Popen[bytes]:
        """``powernode-agent hub run`` in the platform namespace, as a hub host runs it (docs/runbooks/hub.md):
        the platform decides networks and peers, the hub makes its keys and reports them."""
        argv = [
            *agent_argv(), "hub", "run",
            "--url", platform_url,
            "--insecure-http",  # the lab's platform serves plain http on its ULA service address
            "--state-dir", str(self.hub.config.state_dir),
            "--interface-prefix", self.hub.config.interface_prefix,
            "--allow-port", str(SERVER_PORT),
        ]
        env = {
            "POWERNODE_HUB_TOKEN": hub_token,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(AGENT_DIR), os.environ.get("PYTHONPATH")])),
        }
        return self.spawn("platform", "hub", argv, env=env, sandbox=False)

    def spoke_config(self, network: str, *, key: WgKey, overlay_address: str,
                     extra_allowed_ips: Sequence[str] = ()) -> str:
        """The wg-quick config a spoke of ``network`` gets (same shape as an access grant's)."""
        hub_net = self.hub.networks[network]
        return render_wg_quick(
            private_key=key.private, address=f"{overlay_address}/128", peer_public_key=hub_net.public_key,
            endpoint=hub_net.endpoint, allowed_ips=[hub_net.prefix, *extra_allowed_ips],
        )

    def join(self, role: str, network: str, overlay_address: str, *,
             extra_allowed_ips: Sequence[str] = ()) -> WgInterface:
        """Make host ``role`` a spoke of ``network`` at ``overlay_address`` (hub peer + spoke interface).

        ``extra_allowed_ips`` lets a test build a spoke that claims more than its network (the intruder).
        """
        key = WgKey.generate()
        self.hub.set_peer(network, public_key=key.public, overlay_address=overlay_address)
        config = self.spoke_config(network, key=key, overlay_address=overlay_address,
                                   extra_allowed_ips=extra_allowed_ips)
        return self.join_with_config(role, network, config)

    def join_with_config(self, role: str, network: str, config_text: str) -> WgInterface:
        """Bring up a spoke from a wg-quick config (e.g. an access grant's); the hub must know its key."""
        host = self.hosts[role]
        ifname = check_ifname(f"{self.prefix}{role[:4]}{network}")
        iface = spoke_up(host.ns, ifname, config_text, self.dir / "spokes")
        self.spokes[(role, network)] = iface
        return iface

    # --- registry, image, dockerd ----------------------------------------------------------------
    def start_registry(self, ca: LabCa | None = None, *, tls: KeyPair | None = None,
                       ca_pem: str | None = None) -> LabRegistry:
        """The image registry on the platform's service address, named ``registry.powernode.internal``.

        Its certificate comes from ``ca`` (the lab CA), or is given as ``tls`` + ``ca_pem`` (e.g. issued
        by the platform's own CA, for the name REGISTRY_NAME and the service address).
        """
        if ca is not None:
            tls = ca.issue_server(REGISTRY_NAME, dns=[REGISTRY_NAME], ips=[self.service_address])
            ca_pem = ca.ca_pem
        if tls is None or ca_pem is None:
            raise LabError("start_registry needs a CA, or a certificate and the CA that issued it")
        registry = LabRegistry(self.platform, self.dir / "registry", self.service_address, tls=tls)
        self.registry = registry.start()
        self.registry_ca_pem = ca_pem
        return registry

    def start_private_registry(self, *, username: str, password: str,
                               port: int = PRIVATE_REGISTRY_PORT) -> LabRegistry:
        """The registry's private twin: same name, certificate and images (it serves the open registry's
        storage), on ``port``, with basic auth (``username``/``password``, bcrypt htpasswd). Sandboxes
        started before it learn to trust it (their private /etc/docker gets its ``certs.d`` entry)."""
        if not self.registry or not self.registry_ca_pem:
            raise LabError("start the registry first")
        private = LabRegistry(self.platform, self.dir / "registry-private", self.service_address,
                              tls=self.registry.tls, port=port, htpasswd=bcrypt_htpasswd(username, password),
                              storage=self.registry.storage_dir)
        self.private_registry = private.start()
        for etc_docker in self.dir.glob("etc-docker-*"):
            write_etc_docker(etc_docker, self.registry_cas())  # dockerd reads certs.d at each pull
        return private

    def ns(self, role: str) -> Netns:
        """The namespace of host ``role``; ``platform`` is the platform's."""
        return self.platform if role == "platform" else self.hosts[role].ns

    def hosts_entries(self) -> dict[str, str]:
        """Names that resolve inside the lab's sandboxes (see lab.sandbox): the registry, the platform."""
        entries = {PLATFORM_NAME: self.service_address}
        if self.registry:
            entries[self.registry.name] = self.service_address
        return entries

    def registry_cas(self) -> dict[str, str]:
        if self.registry and self.registry_ca_pem:
            cas = {self.registry.host: self.registry_ca_pem}
            if self.private_registry:
                cas[self.private_registry.host] = self.registry_ca_pem
            return cas
        return {}

    def dockerd(self, role: str, *, tcp_hosts: Sequence[str] = (), tls: DockerdTls | None = None,
                unix_socket: bool = False, bip: str | None = "198.18.0.1/24") -> LabDockerd:
        """A (not yet started) dockerd in host ``role`` that resolves and trusts the lab registry."""
        dockerd = LabDockerd(
            self.ns(role), f"{self.prefix}d{role}", self.dir / f"dockerd-{role}", tcp_hosts=list(tcp_hosts),
            unix_socket=unix_socket, tls=tls, bip=bip, hosts_entries=self.hosts_entries(),
            registry_cas=self.registry_cas(),
        )
        self.dockerds[role] = dockerd
        return dockerd

    def spawn(self, role: str, name: str, argv: Sequence[str], *, env: Mapping[str, str] | None = None,
              sandbox: bool = True, cwd: Path | None = None) -> subprocess.Popen[bytes]:
        """Start a long-running process (platform server, agent) in host ``role``, logging to
        ``<lab dir>/logs/<name>.log``; ``close()`` stops it.

        With ``sandbox`` it sees the lab's hosts file and a private /etc/docker
        (``<lab dir>/etc-docker-<name>``): an agent's dockerd then trusts the lab registry, and the
        daemon.json and TLS files it writes under /etc/docker stay inside the lab.
        """
        if name in self.processes:
            raise LabError(f"process {name} exists")
        if sandbox:
            hosts_file = write_hosts_file(self.dir / f"hosts-{name}", self.hosts_entries())
            etc_docker = write_etc_docker(self.dir / f"etc-docker-{name}", self.registry_cas())
            full_argv = sandbox_argv(self.ns(role), argv, hosts_file=hosts_file, etc_docker=etc_docker)
        else:
            full_argv = [*self.ns(role).prefix_argv(), *argv]
        log_path = self.dir / "logs" / f"{name}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:
            process = subprocess.Popen(
                full_argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={**os.environ, **(env or {})}, cwd=cwd, start_new_session=True,
            )
        self.processes[name] = process
        return process

    def stop_process(self, name: str, *, timeout: float = 15) -> int | None:
        """SIGTERM the process group of a spawned process, SIGKILL after ``timeout``; its exit code."""
        process = self.processes.pop(name)
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)
        return process.returncode

    def build_image(self) -> str:
        """Build the busybox httpd image with a throwaway dockerd in the platform namespace and push
        it to the registry; returns the image reference."""
        if not self.registry:
            raise LabError("start the registry first")
        builder = self.dockerd("platform", unix_socket=True, bip=None)
        builder.start()
        try:
            self.image_ref = build_and_push(builder.socket_path, self.registry.host)
        finally:
            builder.remove()
            self.dockerds.pop("platform", None)
        return self.image_ref

    # --- probes ------------------------------------------------------------------------------------
    def curl(self, role: str, url: str, *, ca_pem: str | None = None, cert_pem: str | None = None,
             key_pem: str | None = None, max_time: float = 5) -> subprocess.CompletedProcess[str]:
        """curl from host ``role`` (``platform`` too); check=False: callers look at returncode."""
        ns = self.ns(role)
        argv = ["curl", "-sS", "--max-time", str(max_time), "-g"]
        tmp = self.dir / "curl" / role
        if ca_pem:
            argv += ["--cacert", str(write_private(tmp / "ca.pem", ca_pem))]
        if cert_pem and key_pem:
            argv += ["--cert", str(write_private(tmp / "cert.pem", cert_pem)),
                     "--key", str(write_private(tmp / "key.pem", key_pem))]
        return ns.run(*argv, url, check=False, timeout=max_time + 10)


def agent_argv() -> list[str]:
    """How to run ``powernode-agent``: the venv's script when installed, else the module."""
    script = Path(sys.executable).with_name("powernode-agent")
    return [str(script)] if script.exists() else [sys.executable, "-m", "powernode_agent.cli"]


def _try(step: object, errors: list[str]) -> None:
    try:
        step()  # type: ignore[operator]
    except Exception as exc:  # noqa: BLE001 - teardown keeps going and reports
        errors.append(f"{getattr(step, '__qualname__', step)}: {exc}")
