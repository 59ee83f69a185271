"""Tutorial 03 for real on one machine: the platform server, its SDWAN hub, a node running powernode-agent,
an operator workstation and an intruder, then the tutorial's steps through the operator API.

``Tutorial(prefix).build()`` stands the world up; each step method does one thing of the tutorial and raises
``LabError`` when the platform or the machines do not behave as the tutorial says. ``walk()`` runs them all
and prints each with its duration (``python -m lab walk``, ``make lab``); the tests call them one by one.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from apps.docker_hosts import kinds as docker_kinds  # plain constants: no Django setup in the lab's process
from lab.netns import in_netns
from lab.pki import KeyPair
from lab.platform import LabPlatform
from lab.proc import LabError, run, wait_for, write_private
from lab.registry import REGISTRY_NAME
from lab.topology import AGENT_DIR, HUB_BASE_PORT, Lab, agent_argv
from lab.wireguard import WgKey

NODE, WORKSTATION, INTRUDER = "node", "ws", "intr"
# Platform network name -> (lab hub name, prefix); the hub's k-th network listens on 51820+k.
NETWORKS = {"lab-a": ("A", "fd70:6e6c:a::/64"), "lab-b": ("B", "fd70:6e6c:b::/64")}
NODE_BIP = "198.18.0.1/24"
DOCKER_PORT = 2376
CONTAINER_NAME = "hello-httpd"
PUBLISHED_PORT = 8080
AGENT_ARGV = agent_argv()
DOCKER_CLI_CANDIDATES = ("/usr/local/bin/docker", "/usr/bin/docker")


@dataclass
class Step:
    number: int
    title: str
    seconds: float = 0.0
    detail: str = ""


@dataclass
class Tutorial:
    """One lab with the platform composed in; the tutorial's state as it walks (ids, addresses)."""

    prefix: str
    dockerd_gate: Path | None = (
        None  # while set and missing, the agent's dockerd waits (tests: mid-handshake)
    )
    out: Callable[[str], None] = print
    # the node installs powernode-agent with the enrollment command system_provision_instance returned (wheel
    # from the platform into a virtualenv) and runs that copy; otherwise it runs the checkout's source (faster)
    agent_from_platform: bool = False
    lab: Lab = field(init=False)
    platform: LabPlatform = field(init=False)
    steps: list[Step] = field(default_factory=list)
    image_ref: str = ""
    template_id: str = ""
    instance_id: str = ""
    network_ids: dict[str, str] = field(default_factory=dict)
    hub_token: str = ""
    node_overlay: str = ""
    agent_token: str = ""
    install_command: str = ""
    module_id: str = ""
    host_id: str = ""
    container_id: str = ""
    assigned_at: float = 0.0
    connected_after_s: float | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    round_start: int = 0  # index in ``events`` of the latest assignment's first event
    cert_dirs: dict[str, Path] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.lab = Lab(self.prefix)
        self.platform = LabPlatform(self.lab, access_log=self.agent_from_platform)

    # --- the world ---------------------------------------------------------------------------------
    @property
    def node_dir(self) -> Path:
        return self.lab.dir / "node"

    def build(self) -> Tutorial:
        """Namespaces, platform (database, CA, server), registry + image, networks, hub, spokes, agent."""
        lab, platform = self.lab, self.platform
        lab.up()
        with self.step("machines: platform, node, workstation, intruder (namespaces, underlay cables)"):
            for role in (NODE, WORKSTATION, INTRUDER):
                lab.add_host(role)
        with self.step("platform: database, catalog, local CA, operator token, registry certificate"):
            registry = platform.setup(registry_name=REGISTRY_NAME)["registry"]
        with self.step("platform server, image registry (TLS from the platform's CA) and the busybox image"):
            platform.start_server()  # boots while the registry starts and the image builds
            lab.start_registry(
                tls=KeyPair(registry["cert_pem"], registry["key_pem"]), ca_pem=registry["chain_pem"]
            )
            self.image_ref = lab.build_image()
            platform.wait_server()
        with self.step("the SDWAN hub: powernode-agent hub run with a hub token (system_sdwan_create_hub_token)"):
            self.hub_token = platform.action("system_sdwan_create_hub_token", {"name": "lab-hub"})["hub_token"]
            lab.start_hub(platform_url=platform.url, hub_token=self.hub_token)
        with self.step("SDWAN networks, node template and instance, the node's /128") as s:
            self._platform_objects()
            s.detail = f"the hub applied both networks and reported its keys in {self.wait_hub_keys():.2f} s"
        with self.step("access grants (wg-quick configs); workstation and intruder spokes") as s:
            grants = self._access_grants()
            self._spokes(grants)
            waited = self.wait_hub_peers({
                "lab-a": [config_public_key(grants[WORKSTATION]["wireguard_config"])],
                "lab-b": [config_public_key(grants[INTRUDER]["wireguard_config"])],
            })
            s.detail = f"the hub admitted both devices {waited:.2f} s after their grants"
        with self.step(
            "operator certificates: workstation (manage.py export_operator_cert), intruder (action)"
        ):
            self._operator_certs()
        if self.agent_from_platform:
            with self.step("the node runs the enrollment command: the agent's wheel from the platform, installed") as s:
                s.detail = self.install_agent()
        with self.step("powernode-agent on the node; the hub learns the node's key from the platform") as s:
            self.start_agent()
            key = self.wait_node_key()
            s.detail = f"the hub admitted the node {self.wait_hub_peers({'lab-a': [key]}):.2f} s after its key"
        return self

    def close(self) -> dict[str, list[str]]:
        """Stop everything and sweep by prefix; leftovers (empty when clean)."""
        self.platform.close()
        return self.lab.close()

    def _platform_objects(self) -> None:
        api = self.platform.action
        self.template_id = api("system_create_node_template", {"name": "lab-docker-nodes"})["template"]["id"]
        for k, (name, (_hub_name, prefix)) in enumerate(NETWORKS.items()):
            network = api(
                "system_sdwan_create_network",
                {
                    "name": name,
                    "prefix": prefix,
                    "hub_endpoint": f"[{self.lab.service_address}]:{HUB_BASE_PORT + k}",
                },
            )["network"]
            self.network_ids[name] = network["id"]
        created = api("system_provision_instance", {"template_id": self.template_id, "name": "lab-node-1"})
        self.instance_id, self.agent_token = created["instance"]["id"], created["agent_token"]
        self.install_command = created["install_command"] or ""
        peer = api(
            "system_sdwan_attach_peer",
            {"network_id": self.network_ids["lab-a"], "node_instance_id": self.instance_id},
        )["peer"]
        self.node_overlay = peer["overlay_address"]

    def wait_hub_keys(self, *, timeout: float = 30) -> float:
        """Until the platform holds, for every lab network, the public key the hub made for it; seconds."""
        started = time.monotonic()

        def keys() -> bool:
            for network_id in self.network_ids.values():
                response = self.platform.get(f"/api/v1/sdwan/networks/{network_id}/", as_operator=True)
                if response.status_code != 200 or not response.json().get("hub_public_key"):
                    return False
            return True

        wait_for(keys, timeout=timeout, what=f"the hub's keys on the platform{self._log_hint('hub')}", interval=0.1)
        return time.monotonic() - started

    def wait_hub_peers(self, wanted: dict[str, list[str]], *, timeout: float = 30) -> float:
        """Until the hub has applied these peers (network name -> public keys), as ``hub status`` shows; seconds.
        Nothing is run by hand: the hub learns them from the platform."""
        started = time.monotonic()

        def applied() -> bool:
            networks = self.lab.hub.refresh()
            return all(name in networks and set(keys) <= set(networks[name].peers) for name, keys in wanted.items())

        wait_for(applied, timeout=timeout, what=f"the hub to apply {wanted}{self._log_hint('hub')}", interval=0.1)
        return time.monotonic() - started

    def _access_grants(self) -> dict[str, dict[str, Any]]:
        """wg-quick configs from system_sdwan_create_access_grant: workstation on lab-a, intruder on lab-b."""
        grant = self.platform.action
        return {
            WORKSTATION: grant(
                "system_sdwan_create_access_grant",
                {"network_id": self.network_ids["lab-a"], "device_name_hint": "ops-laptop"},
            )["grant"],
            INTRUDER: grant(
                "system_sdwan_create_access_grant",
                {"network_id": self.network_ids["lab-b"], "device_name_hint": "intruder"},
            )["grant"],
        }

    def _spokes(self, grants: dict[str, dict[str, Any]]) -> None:
        self.lab.join_with_config(WORKSTATION, "A", grants[WORKSTATION]["wireguard_config"])
        # The intruder routes network A's prefix into its tunnel too: only the hub and WireGuard's
        # cryptokey routing stand between it and the node.
        self.lab.join_with_config(
            INTRUDER, "B", claim_prefix(grants[INTRUDER]["wireguard_config"], NETWORKS["lab-a"][1])
        )

    def _operator_certs(self) -> None:
        """The workstation's certificate is for lab-a (the node's network), the intruder's for lab-b (its own):
        each opens only its own network's hosts."""
        ws_dir = self.lab.dir / WORKSTATION / ".powernode"
        self.platform.manage(
            "export_operator_cert",
            "--user",
            self.platform.operator,
            "--network",
            self.network_ids["lab-a"],
            "--out",
            str(ws_dir),
        )
        intr_dir = self.write_certs(
            self.lab.dir / INTRUDER / ".powernode",
            self.platform.action("system_export_operator_cert", {"network_id": self.network_ids["lab-b"]}),
        )
        self.cert_dirs = {WORKSTATION: ws_dir, INTRUDER: intr_dir}

    @staticmethod
    def write_certs(directory: Path, exported: dict[str, Any]) -> Path:
        """An export's ``ca_pem``, ``cert_pem``, ``key_pem`` as the files ``docker_cli`` reads."""
        write_private(directory / "operator-ca.pem", exported["ca_pem"], 0o644)
        write_private(directory / "operator-cert.pem", exported["cert_pem"], 0o644)
        write_private(directory / "operator-key.pem", exported["key_pem"], 0o600)
        return directory

    def agent_handshake(self, agent_token: str, phase: str, **fields: Any) -> tuple[int, Any]:
        """POST /api/v1/runtime/handshake as the agent holding ``agent_token`` (from the platform's namespace)."""
        with in_netns(self.lab.platform.name):
            response = self.platform._http().post(
                f"{self.platform.url}/api/v1/runtime/handshake",
                json={"runtime": "docker", "phase": phase, **fields},
                headers={"Authorization": f"Bearer {agent_token}"},
                timeout=60,
            )
        return response.status_code, response.json()

    @property
    def installed_agent(self) -> Path:
        """Where the enrollment command installs the agent in the lab (on a node: /opt/powernode-agent)."""
        return self.node_dir / "opt"

    @property
    def installed_config(self) -> Path:
        """Where it writes the token and agent.env (on a node: /etc/powernode-agent)."""
        return self.node_dir / "etc"

    def install_agent(self) -> str:
        """Run the enrollment command in the node, as an operator pastes it: curl install.sh from the platform,
        which downloads the wheel, checks its sha256 and installs it into a virtualenv. The node has no
        internet: the virtualenv sees the interpreter's cryptography (--system-site-packages), pip no index."""
        if not self.install_command:
            raise LabError("system_provision_instance returned no install_command (is POWERNODE_PUBLIC_URL set?)")
        self.node_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        placement = {
            "POWERNODE_AGENT_PREFIX": str(self.installed_agent),
            "POWERNODE_AGENT_CONFIG_DIR": str(self.installed_config),
            "POWERNODE_AGENT_PYTHON": str(Path(sys.base_prefix) / "bin" / "python3"),
            "POWERNODE_AGENT_NO_SYSTEMD": "1",  # the lab's node has no systemd: the lab starts the agent
            "POWERNODE_AGENT_OFFLINE": "1",
            "PYTHONPATH": "",
        }
        done = self.lab.ns(NODE).run(
            "env", *(f"{k}={v}" for k, v in placement.items()), "sh", "-c", self.install_command, timeout=600
        )
        wheel = next(self.installed_agent.glob("lib/python*/site-packages/powernode_agent-*.dist-info"), None)
        if wheel is None:
            raise LabError(f"the enrollment command installed no agent:\n{done.stderr[-2000:]}")
        return f"{wheel.name.removesuffix('.dist-info')} in {self.installed_agent}"

    def installed_agent_env(self) -> dict[str, str]:
        """agent.env as the enrollment command wrote it (what the systemd unit's EnvironmentFile= reads)."""
        lines = (self.installed_config / "agent.env").read_text().splitlines()
        return dict(line.split("=", 1) for line in lines if "=" in line)

    def agent_argv(self) -> list[str]:
        """The agent's command line in the node (the shape agent/README.md gives for a namespaced node)."""
        d = self.node_dir
        run_dir = shlex.quote(str(d / "run"))
        script = f'mkdir -p -m 0755 {run_dir} && mount --bind {run_dir} /run && exec "$@"'
        if self.dockerd_gate:
            script = f"while [ ! -e {shlex.quote(str(self.dockerd_gate))} ]; do sleep 0.1; done; {script}"
        extras = {
            "data-root": str(d / "data"),
            "exec-root": str(d / "x"),
            "pidfile": str(d / "docker.pid"),
            "bip": NODE_BIP,
            "cgroup-parent": f"/{self.prefix}dnode",
            "shutdown-timeout": 2,
        }
        if self.agent_from_platform:  # the installed copy; plain http is allowed by its agent.env
            program = [str(self.installed_agent / "bin" / "powernode-agent"), "run"]
        else:  # the lab's platform serves plain http on its ULA address (not loopback): opt in explicitly
            program = [*AGENT_ARGV, "run", "--insecure-http"]
        return [
            *program,
            "--state-dir",
            str(d / "state"),
            "--wg-prefix",
            f"{self.prefix}n",
            "--dockerd-launch",
            "child",
            # dockerd gets the node's own /run (a directory of the lab bound over it): no machine containerd
            # socket, and, as on a real node, its runtime files (containerd's shim sockets) outlive a dockerd
            # restart, so live-restore keeps containers running through one (a certificate renewal).
            "--dockerd-prefix",
            shlex.join(["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh"]),
            "--docker-tls-dir",
            str(d / "tls"),
            "--daemon-json",
            str(d / "daemon.json"),
            "--daemon-extras-json",
            json.dumps(extras),
        ]

    def start_agent(self) -> subprocess.Popen[bytes]:
        if self.agent_from_platform:
            # nothing of the checkout on the path: the agent imports the copy installed from the wheel
            env = {**self.installed_agent_env(), "PYTHONPATH": ""}
        else:
            env = {
                "POWERNODE_URL": self.platform.url,
                "POWERNODE_AGENT_TOKEN": self.agent_token,
                "PYTHONPATH": os.pathsep.join(filter(None, [str(AGENT_DIR), os.environ.get("PYTHONPATH")])),
            }
        self.node_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Sandboxed: the lab's hosts file (the registry's name), a private /etc/docker trusting the registry.
        return self.lab.spawn(NODE, "agent", self.agent_argv(), env=env, sandbox=True)

    def kill_agent(self) -> None:
        """SIGKILL the agent (a crash): its dockerd child, in its own session, lives on."""
        process = self.lab.processes.pop("agent")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def wait_node_key(self, *, timeout: float = 60) -> str:
        """The agent's first heartbeat reported its WireGuard public key (the hub needs it)."""

        def reported() -> str | None:
            peers = self.platform.action("system_sdwan_list_peers", {"network_id": self.network_ids["lab-a"]})
            node = [p for p in peers["peers"] if p.get("node_instance_id") == self.instance_id]
            return node[0].get("public_key") if node else None

        return wait_for(
            reported, timeout=timeout, what=f"the agent's heartbeat{self._agent_log_hint()}", interval=0.1
        )

    def _agent_log_hint(self) -> str:
        return self._log_hint("agent")

    def _log_hint(self, name: str) -> str:
        log = self.lab.dir / "logs" / f"{name}.log"
        return f" ({name} log {log})" if log.exists() else ""

    def agent_log_tail(self, chars: int = 3000) -> str:
        try:
            return (self.lab.dir / "logs" / "agent.log").read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    # --- steps -------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def step(self, title: str) -> Iterator[Step]:
        step = Step(len(self.steps) + 1, title)
        started = time.monotonic()
        try:
            yield step
        finally:
            step.seconds = time.monotonic() - started
            self.steps.append(step)
            detail = f"  — {step.detail}" if step.detail else ""
            self.out(f"[{step.number:2d}] {step.seconds:6.2f} s  {title}{detail}")

    def assign(self) -> dict[str, Any]:
        """system_assign_module_to_template(docker-engine) for the node's template."""
        modules = self.platform.action("system_list_modules")["modules"]
        self.module_id = next(m["id"] for m in modules if m["name"] == "docker-engine")
        template = self.platform.action("system_get_instance", {"id": self.instance_id})["instance"]
        if template["node_template_id"] != self.template_id:
            raise LabError(
                f"the instance's template is {template['node_template_id']}, not {self.template_id}"
            )
        self.assigned_at = time.monotonic()
        self.round_start = len(self.events)
        return self.platform.action(
            "system_assign_module_to_template", {"template_id": self.template_id, "module_id": self.module_id}
        )

    def docker_events(self) -> list[dict[str, Any]]:
        """recent_events(kind_prefix="system.docker"), oldest first."""
        answer = self.platform.action("recent_events", {"kind_prefix": docker_kinds.PREFIX, "limit": 200})
        return list(reversed(answer["events"]))

    def watch_events(
        self,
        until: str = docker_kinds.PROVISIONED,
        *,
        timeout: float = 180,
        on_event: Callable[[dict[str, Any]], None] | None = None,
    ) -> list[dict[str, Any]]:
        """Poll recent_events until an event of kind ``until`` appears since the latest assignment; print each
        new one as it comes."""
        seen: set[Any] = {e["id"] for e in self.events}
        deadline = time.monotonic() + timeout
        while True:
            for event in self.docker_events():
                if event["id"] in seen:
                    continue
                seen.add(event["id"])
                self.events.append(event)
                self.out(f"       +{time.monotonic() - self.assigned_at:5.2f} s  {event['kind']}")
                if on_event:
                    on_event(event)
                if event["kind"] == docker_kinds.FAILED:
                    raise LabError(f"the handshake failed: {event.get('data')}\n{self.agent_log_tail()}")
            if any(e["kind"] == until for e in self.events[self.round_start :]):
                return self.events
            if time.monotonic() > deadline:
                raise LabError(f"no {until} event after {timeout} s; agent log:\n{self.agent_log_tail()}")
            time.sleep(0.1)

    def host(self) -> dict[str, Any]:
        hosts = self.platform.action("docker_list_hosts")["hosts"]
        mine = [h for h in hosts if h["node_instance_id"] == self.instance_id]
        if not mine:
            raise LabError(f"docker_list_hosts has no host for instance {self.instance_id}: {hosts}")
        return mine[0]

    def connected(self) -> dict[str, Any]:
        """The node's DockerHost is connected, at tcp://[overlay]:2376, with the engine's version."""
        host = self.host()
        if host["status"] != "connected":
            raise LabError(f"host {host['id']} is {host['status']}, not connected")
        expected = f"tcp://[{self.node_overlay}]:{DOCKER_PORT}"
        if host["api_endpoint"] != expected:
            raise LabError(f"host endpoint {host['api_endpoint']}, expected {expected}")
        self.host_id = host["id"]
        return host

    def pull(self) -> dict[str, Any]:
        return self.platform.action("docker_pull_image", {"host_id": self.host_id, "image": self.image_ref})[
            "image"
        ]

    def create_container(self) -> dict[str, Any]:
        container = self.platform.action(
            "docker_create_container",
            {
                "host_id": self.host_id,
                "image": self.image_ref,
                "name": CONTAINER_NAME,
                "ports": [{"host": PUBLISHED_PORT, "container": 80}],
                "detach": True,
            },
        )["container"]
        self.container_id = container["id"]
        return container

    def list_containers(self) -> list[dict[str, Any]]:
        return self.platform.action("docker_list_containers", {"host_id": self.host_id})["containers"]

    def curl_container(
        self, role: str = WORKSTATION, *, max_time: float = 5
    ) -> subprocess.CompletedProcess[str]:
        return self.lab.curl(role, f"http://[{self.node_overlay}]:{PUBLISHED_PORT}/", max_time=max_time)

    def docker_cli(
        self, role: str, *args: str, timeout: float = 20, certs: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        """The Docker CLI in host ``role`` with that host's exported operator certificate (not checked), or the
        ``operator-{ca,cert,key}.pem`` files in ``certs``."""
        certs = certs or self.cert_dirs[role]
        cli = next((c for c in DOCKER_CLI_CANDIDATES if Path(c).exists()), "docker")
        argv = [
            cli,
            "--tlsverify",
            "--tlscacert",
            str(certs / "operator-ca.pem"),
            "--tlscert",
            str(certs / "operator-cert.pem"),
            "--tlskey",
            str(certs / "operator-key.pem"),
            "-H",
            f"tcp://[{self.node_overlay}]:{DOCKER_PORT}",
            *args,
        ]
        env = {**os.environ, "DOCKER_CONFIG": str(self.lab.dir / role / ".docker")}
        try:
            return subprocess.run(
                [*self.lab.ns(role).prefix_argv(), *argv],
                capture_output=True,
                text=True,
                timeout=timeout,
                env=env,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            return subprocess.CompletedProcess(exc.cmd, 124, "", f"timed out after {timeout} s")

    def intruder_attempts(self, *, timeout: float = 4) -> tuple[subprocess.CompletedProcess[str], ...]:
        """From the intruder, at once: curl to the published port and the Docker CLI with a valid operator
        certificate; both should time out (their packets die at the hub)."""
        with ThreadPoolExecutor(2) as pool:
            web = pool.submit(self.curl_container, INTRUDER, max_time=timeout)
            cli = pool.submit(self.docker_cli, INTRUDER, "ps", timeout=timeout)
            return web.result(), cli.result()

    def delete_container(self) -> dict[str, Any]:
        return self.platform.action(
            "docker_delete_container",
            {"host_id": self.host_id, "container_id": self.container_id, "force": True},
        )

    def delete_image(self) -> dict[str, Any]:
        return self.platform.action(
            "docker_delete_image", {"host_id": self.host_id, "image_id": self.image_ref}
        )

    def dockerd_pids(self) -> list[int]:
        """dockerd processes in the node's namespace."""
        found = []
        for pid in self.lab.ns(NODE).pids():
            with contextlib.suppress(OSError):
                if Path(f"/proc/{pid}/comm").read_text().strip() == "dockerd":
                    found.append(pid)
        return found

    def decommission(self, *, timeout: float = 120) -> dict[str, Any]:
        """system_decommission_docker_runtime, then wait until the agent confirmed (host decommissioned)."""
        answer = self.platform.action("system_decommission_docker_runtime", {"host_id": self.host_id})

        def confirmed() -> bool:
            hosts = self.platform.action("docker_list_hosts", {"status": "decommissioned"})["hosts"]
            return any(h["id"] == self.host_id for h in hosts)

        wait_for(confirmed, timeout=timeout, what=f"host {self.host_id} decommissioned", interval=0.2)
        return answer

    def host_certificates(self) -> list[dict[str, Any]]:
        return self.platform.side("host-certificates", "--host-id", self.host_id)["certificates"]

    def crl_serials(self) -> set[str]:
        """Serials on the platform's CRL (GET /api/v1/pki/crl), lowercase colon hex like the records."""
        from cryptography import x509

        response = self.platform.get("/api/v1/pki/crl")
        if response.status_code != 200:
            raise LabError(f"GET /api/v1/pki/crl: {response.status_code} {response.text[:500]}")
        crl = x509.load_pem_x509_crl(response.content)
        return {_colon_hex(r.serial_number) for r in crl}

    def unassign(self) -> dict[str, Any]:
        return self.platform.action(
            "system_unassign_module_from_template",
            {"template_id": self.template_id, "module_id": self.module_id},
        )

    # --- the whole walk ----------------------------------------------------------------------------
    def walk(self) -> None:
        """The tutorial from assignment to unassignment; raises LabError at the first step that misbehaves."""
        with self.step("assign docker-engine to the node's template"):
            self.assign()
        with self.step("watch recent_events(kind_prefix='system.docker') until provisioned"):
            self.watch_events()
        with self.step("docker_list_hosts: the host is connected") as s:
            host = self.connected()
            self.connected_after_s = connected_seconds(self.events)
            s.detail = f"{host['id']} {host['api_endpoint']} engine {host['version']}"
        kinds = [e["kind"] for e in self.events]
        if first_occurrences(kinds) != docker_kinds.PROVISIONING_SEQUENCE:
            raise LabError(f"events out of the tutorial's order: {kinds}")
        with self.step(f"docker_pull_image {self.image_ref}") as s:
            image = self.pull()
            s.detail = f"{image['id'][:19]} {image.get('size')} bytes"
        with self.step(f"docker_create_container {CONTAINER_NAME}, port {PUBLISHED_PORT}→80") as s:
            s.detail = f"{self.create_container()['status']}"
        with self.step("docker_list_containers") as s:
            listed = [c for c in self.list_containers() if c["id"].startswith(self.container_id[:12])]
            if not listed:
                raise LabError(f"{CONTAINER_NAME} is not listed")
            s.detail = f"{listed[0]['name']} {listed[0]['status']}"
        with self.step(f"workstation: curl http://[{self.node_overlay}]:{PUBLISHED_PORT}") as s:
            done = wait_for(
                lambda: (r := self.curl_container()).returncode == 0 and r,
                timeout=15,
                what="the container's HTTP answer from the workstation",
            )
            if "powernode lab" not in done.stdout:
                raise LabError(f"unexpected answer: {done.stdout[:300]}")
            s.detail = done.stdout.strip().splitlines()[-1][:60]
        with self.step("workstation: docker --tlsverify ... ps with the exported operator certificate") as s:
            ps = self.docker_cli(WORKSTATION, "ps")
            if ps.returncode != 0 or CONTAINER_NAME not in ps.stdout:
                raise LabError(f"docker ps from the workstation: {ps.returncode} {ps.stdout}{ps.stderr}")
            s.detail = f"{len(ps.stdout.strip().splitlines()) - 1} container(s)"
        with self.step("intruder on lab-b with a valid operator certificate: 2376 and 8080 unreachable") as s:
            dropped_before = self.lab.hub.dropped_packets()
            web, cli = self.intruder_attempts()
            if web.returncode == 0 or cli.returncode == 0:
                raise LabError(
                    f"the intruder reached the node: curl {web.returncode}, docker {cli.returncode}"
                )
            s.detail = (
                f"curl exit {web.returncode}, docker exit {cli.returncode}, "
                f"hub dropped {self.lab.hub.dropped_packets() - dropped_before} packets"
            )
        with self.step("docker_delete_container (force)"):
            self.delete_container()
        with self.step("docker_delete_image"):
            self.delete_image()
        with self.step("system_decommission_docker_runtime, until the agent confirms") as s:
            self.decommission()
            wait_for(lambda: not self.dockerd_pids(), timeout=30, what="dockerd to stop")
            certs = self.host_certificates()
            unrevoked = [c["serial"] for c in certs if not c["revoked_at"]]
            missing = {c["serial"] for c in certs} - self.crl_serials()
            if unrevoked or missing:
                raise LabError(f"certificates not revoked: {unrevoked}, not on the CRL: {sorted(missing)}")
            s.detail = f"dockerd stopped, {len(certs)} certificates revoked and on the CRL"
        with self.step("system_unassign_module_from_template"):
            self.unassign()

    def summary(self) -> str:
        total = sum(s.seconds for s in self.steps)
        lines = [f"{len(self.steps)} steps in {total:.1f} s"]
        if self.connected_after_s is not None:
            lines.append(
                f"assignment → connected: {self.connected_after_s:.2f} s (platform event times; "
                f"heartbeat every {self.platform.heartbeat_interval_s} s, dockerd already installed)"
            )
        return "\n".join(lines)


# --- helpers ---------------------------------------------------------------------------------------


def config_public_key(wg_quick: str) -> str:
    """The public key of a wg-quick config's ``PrivateKey`` (the device key of an access grant)."""
    for line in wg_quick.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip().lower() == "privatekey":
            return WgKey.from_private(value.strip()).public
    raise LabError("the wg-quick config has no PrivateKey")


def claim_prefix(wg_quick: str, prefix: str) -> str:
    """The same wg-quick config with ``prefix`` added to its peer's AllowedIPs."""
    lines = []
    for line in wg_quick.splitlines():
        if line.strip().lower().startswith("allowedips"):
            line = f"{line.rstrip()}, {prefix}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def first_occurrences(kinds: list[str], wanted: tuple[str, ...] = docker_kinds.PROVISIONING_SEQUENCE) -> tuple:
    """The wanted kinds (by default the provisioning sequence, DESIGN §3) in the order they first occur."""
    order: list[str] = []
    for kind in kinds:
        if kind in wanted and kind not in order:
            order.append(kind)
    return tuple(order)


def connected_seconds(events: list[dict[str, Any]]) -> float | None:
    """Seconds between module.assigned and provisioned, from the platform's own event times."""
    import datetime as dt

    times = {}
    for event in events:
        times.setdefault(
            event["kind"], dt.datetime.fromisoformat(event["occurred_at"].replace("Z", "+00:00"))
        )
    start, end = times.get(docker_kinds.MODULE_ASSIGNED), times.get(docker_kinds.PROVISIONED)
    return (end - start).total_seconds() if start and end else None


def _colon_hex(serial: int) -> str:
    """The platform's serial spelling (apps.pki.adapters.base.format_serial): colon hex of minimal bytes."""
    return serial.to_bytes(max(1, (serial.bit_length() + 7) // 8), "big").hex(":")


def docker_cli_available() -> bool:
    return (
        any(Path(c).exists() for c in DOCKER_CLI_CANDIDATES)
        or run(["sh", "-c", "command -v docker"], check=False).returncode == 0
    )
