"""The smoke test of the docker runtime handshake: play an agent over HTTP against the configured platform.

It makes its own throwaway template, instance, network and peer (named ``smoke-<stamp>``), assigns
docker-engine, walks heartbeat → installing → wants_cert → wants_config → ready with a real Ed25519 key
and CSR, checks what the platform answers and records, then decommissions and removes what it made,
also when a step fails. Used by ``manage.py smoke_test_docker_runtime``.
"""

from __future__ import annotations

import ipaddress
import json
import secrets
import socketserver
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TextIO
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from django.conf import settings
from django.db import connections, transaction

from apps.docker_hosts import kinds
from apps.docker_hosts.models import DOCKER_TLS_PORT, DockerHost
from apps.docker_hosts.services import docker_host_request_decommission, docker_hosts_end_for_instance
from apps.events.models import Event
from apps.modules.models import Module, ModuleAssignment
from apps.modules.services import module_assign_to_template, module_unassign_from_template
from apps.nodes.models import NodeInstance, NodeTemplate
from apps.nodes.services import instance_delete, instance_provision, template_create
from apps.pki.models import IssuedCertificate
from apps.pki.services import ca_crl_pem, ca_status
from apps.sdwan.models import SdwanNetwork
from apps.sdwan.services import network_create, peer_attach
from powernode.actors import Actor

#: the smoke walks a host from assignment to decommissioned: both sequences of DESIGN §3, in order
EXPECTED_EVENTS = [*kinds.PROVISIONING_SEQUENCE, *kinds.DECOMMISSION_SEQUENCE]
ENGINE_VERSION = "20.10.24-smoke"


class StepFailed(Exception):
    """A check did not hold; the message says what was expected and what came back."""


def check(condition: bool, message: str) -> None:
    if not condition:
        raise StepFailed(message)


# -- HTTP: the agent's side -------------------------------------------------------------------------


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass


class _ThreadedServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            connections.close_all()  # each request thread opened its own database connection


@contextmanager
def in_process_server() -> Iterator[str]:
    """The platform's WSGI app on 127.0.0.1 on a free port, in a thread; yields its base URL."""
    from django.core.wsgi import get_wsgi_application

    server = make_server("127.0.0.1", 0, get_wsgi_application(), _ThreadedServer, _QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="smoke-wsgi", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


class AgentHttp:
    """The agent's HTTP client: JSON bodies, Bearer agent token, no proxies from the environment."""

    def __init__(self, base_url: str, token: str, timeout_s: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout_s = timeout_s
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def post(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        request = urllib.request.Request(
            self.base_url + path,
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        try:
            with self.opener.open(request, timeout=self.timeout_s) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                return exc.code, json.loads(raw)
            except ValueError:
                return exc.code, {"raw": raw.decode(errors="replace")[:500]}
        except (urllib.error.URLError, OSError) as exc:
            raise StepFailed(f"cannot reach {self.base_url}{path}: {getattr(exc, 'reason', exc)}") from None

    def ok(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        status, answer = self.post(path, body)
        check(status == 200, f"POST {path} {body.get('phase', '')} answered {status}: {answer}")
        return answer

    def heartbeat(self, phase: str = "none") -> dict[str, Any]:
        return self.ok(
            "/api/v1/agent/heartbeat", {"agent_version": "smoke", "runtimes": {"docker": {"phase": phase}}}
        )

    def handshake(self, phase: str, **fields: Any) -> dict[str, Any]:
        return self.ok("/api/v1/runtime/handshake", {"runtime": "docker", "phase": phase, **fields})


# -- the run ----------------------------------------------------------------------------------------


@dataclass
class SmokeState:
    """What the steps made and learned, so later steps and the cleanup can use it."""

    stamp: str
    actor: Actor
    template: NodeTemplate | None = None
    instance: NodeInstance | None = None
    network: SdwanNetwork | None = None
    module: Module | None = None
    overlay: str = ""
    agent: AgentHttp | None = None
    key: ed25519.Ed25519PrivateKey | None = None
    host_id: str = ""
    cert_pem: str = ""
    chain_pem: str = ""
    probe_refused: bool = False  # ready left the host pending: the platform's probe found no daemon
    started: float = field(default_factory=time.time)


@dataclass(frozen=True)
class StepResult:
    name: str
    ok: bool
    seconds: float
    detail: str


class SmokeRun:
    """Runs the steps in order, stops at the first failure, always cleans up, prints one line per step."""

    def __init__(self, *, out: TextIO, url: str | None = None, keep: bool = False) -> None:
        self.out = out
        self.url = url
        self.keep = keep
        self.results: list[StepResult] = []
        self.base_url = url or ""
        self.state = SmokeState(
            stamp=f"smoke-{time.strftime('%Y%m%d%H%M%S')}-{secrets.token_hex(3)}",
            actor=Actor(label="smoke_test_docker_runtime"),
        )

    # reporting
    def _step(self, name: str, fn: Callable[[], str]) -> bool:
        started = time.perf_counter()
        try:
            detail = fn() or ""
            ok = True
        except StepFailed as exc:
            detail, ok = str(exc), False
        except Exception as exc:  # noqa: BLE001 - any crash is a failed step, reported, then cleaned up
            detail, ok = f"{type(exc).__name__}: {exc}", False
        result = StepResult(name, ok, time.perf_counter() - started, detail)
        self.results.append(result)
        mark = "PASS" if ok else "FAIL"
        self.out.write(
            f"[{mark}] {len(self.results):2d} {name:<28} {result.seconds * 1000:8.1f} ms  {detail}\n"
        )
        self.out.flush()
        return ok

    @property
    def passed(self) -> bool:
        return bool(self.results) and all(r.ok for r in self.results)

    def run(self) -> bool:
        s = self.state
        self.out.write(f"smoke_test_docker_runtime: throwaway objects named {s.stamp}\n")
        try:
            if self.url:
                self._walk(self.url)
            else:
                with in_process_server() as url:
                    self._walk(url)
        finally:
            self._step("cleanup", self.cleanup)
        total = time.time() - s.started
        failed = [r.name for r in self.results if not r.ok]
        verdict = "PASS" if not failed else f"FAIL ({', '.join(failed)})"
        self.out.write(f"smoke_test_docker_runtime: {verdict} in {total:.2f} s\n")
        return self.passed

    def _walk(self, url: str) -> None:
        self.base_url = url
        self.out.write(f"smoke_test_docker_runtime: platform at {url}\n")
        steps: list[tuple[str, Callable[[], str]]] = [
            ("ca ready", self.ca_ready),
            ("create throwaway objects", self.setup),
            ("assign docker-engine", self.assign),
            ("heartbeat: provision order", self.heartbeat),
            ("installing", self.installing),
            ("wants_cert: chain and SAN", self.wants_cert),
            ("host pending", self.host_pending),
            ("wants_config: daemon.json", self.wants_config),
            ("ready: probe, then connected", self.ready),
            ("decommission", self.decommission),
            ("certificates revoked", self.revoked),
            ("events in order", self.events_in_order),
        ]
        for name, fn in steps:
            if not self._step(name, fn):
                return

    # the steps
    def ca_ready(self) -> str:
        status = ca_status()
        check(
            bool(status["ca"]["reachable"]),
            f"{status['ca_adapter']} is not usable: {status['ca']} (local CA: run 'manage.py "
            "pki_init_local_ca'; Vault: 'manage.py pki_bootstrap_vault')",
        )
        return status["ca_adapter"]

    def setup(self) -> str:
        s = self.state
        with transaction.atomic():
            s.template = template_create(
                name=s.stamp, description="throwaway: smoke_test_docker_runtime", actor=s.actor
            )
            provisioned = instance_provision(template_id=str(s.template.id), name=s.stamp, actor=s.actor)
            s.instance = provisioned.instance
            s.network = network_create(name=s.stamp, actor=s.actor)
            s.overlay = peer_attach(
                network_id=str(s.network.id), node_instance_id=str(s.instance.id), actor=s.actor
            ).overlay_address
        s.agent = AgentHttp(self.base_url, provisioned.agent_token)
        return f"instance {s.instance.id}, network {s.network.prefix}, overlay {s.overlay}"

    def assign(self) -> str:
        s = self.state
        candidates = Module.objects.filter(runtime=Module.Runtime.DOCKER, name="docker-engine")
        s.module = candidates.filter(lifecycle_state=Module.Lifecycle.LIVE).order_by("-created_at").first()
        check(
            s.module is not None,
            "no live docker-engine module in the catalog: load it with 'manage.py loaddata default_catalog'",
        )
        module_assign_to_template(template_id=str(s.template.id), module_id=str(s.module.id), actor=s.actor)
        return f"{s.module.name} {s.module.version} -> {s.template.name}"

    def heartbeat(self) -> str:
        s = self.state
        answer = s.agent.heartbeat()
        check(
            answer.get("instance_id") == str(s.instance.id),
            f"heartbeat answered for {answer.get('instance_id')}",
        )
        overlays = [m.get("overlay_address") for m in answer.get("sdwan", [])]
        check(overlays == [s.overlay], f"sdwan memberships {overlays}, expected [{s.overlay}]")
        orders = answer.get("runtime_orders")
        check(
            orders == [{"runtime": "docker", "action": "provision", "host_id": None}],
            f"runtime_orders {orders}, expected one docker provision order",
        )
        return f"provision order, interval {answer.get('heartbeat_interval_s')} s"

    def installing(self) -> str:
        answer = self.state.agent.handshake("installing")
        check(answer == {"next_phase": "wants_cert"}, f"installing answered {answer}")
        return "next_phase wants_cert"

    def wants_cert(self) -> str:
        s = self.state
        s.key = ed25519.Ed25519PrivateKey.generate()
        # The CSR asks for more than it may have: the platform must ignore its subject and SANs.
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "smoke-asks-for-anything")]))
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("evil.example"), x509.IPAddress(ipaddress.ip_address("::1"))]
                ),
                critical=False,
            )
            .sign(s.key, None)
        )
        answer = s.agent.handshake(
            "wants_cert", csr_pem=csr.public_bytes(serialization.Encoding.PEM).decode()
        )
        s.host_id, s.cert_pem, s.chain_pem = (
            answer.get("host_id", ""),
            answer["cert_pem"],
            answer["chain_pem"],
        )
        check(s.host_id.startswith("host-"), f"host_id {s.host_id!r}")
        check(answer.get("next_phase") == "wants_config", f"next_phase {answer.get('next_phase')}")
        return verify_server_certificate(
            cert_pem=s.cert_pem, chain_pem=s.chain_pem, host_id=s.host_id, overlay=s.overlay, key=s.key
        )

    def host_pending(self) -> str:
        host = DockerHost.objects.get(pk=self.state.host_id)
        check(host.status == DockerHost.Status.PENDING, f"host status {host.status}, expected pending")
        check(
            host.client_cert_pem != "" and host.client_key_encrypted != "",
            "no platform client keypair on the row",
        )
        return f"{host.id} pending, client keypair mirrored"

    def wants_config(self) -> str:
        s = self.state
        answer = s.agent.handshake("wants_config")
        config = answer.get("daemon_config") or {}
        expected_host = f"tcp://[{s.overlay}]:{DOCKER_TLS_PORT}"
        check(
            config.get("hosts") == [expected_host], f"hosts {config.get('hosts')}, expected [{expected_host}]"
        )
        check(
            config.get("tls") is True and config.get("tlsverify") is True,
            f"tls/tlsverify not both true: {config}",
        )
        for key in ("tlscacert", "tlscert", "tlskey"):
            check(bool(config.get(key)), f"daemon_config lacks {key}")
        check(answer.get("next_phase") == "ready", f"next_phase {answer.get('next_phase')}")
        return f"binds {expected_host} only, tlsverify"

    def ready(self) -> str:
        s = self.state
        answer = s.agent.handshake("ready", version=ENGINE_VERSION)
        if settings.POWERNODE_DOCKER_READY_PROBE and answer.get("status") == "pending":
            # The platform probes the daemon before promoting; the smoke has no dockerd behind its overlay
            # address, so the host must stay pending with the probe's error (the lab covers a real daemon).
            s.probe_refused = True
            host = DockerHost.objects.get(pk=s.host_id)
            check(host.status == DockerHost.Status.PENDING, f"host status {host.status}, expected pending")
            check("could not reach the daemon" in host.last_error, f"last_error {host.last_error!r}")
            check(answer.get("error") == host.last_error, f"ready answered {answer}")
            return f"{host.id} stays pending: the platform's probe found no daemon (the smoke runs none)"
        check(answer.get("status") == "connected", f"ready answered {answer}")
        host = DockerHost.objects.get(pk=s.host_id)
        check(host.status == DockerHost.Status.CONNECTED, f"host status {host.status}, expected connected")
        check(host.version == ENGINE_VERSION, f"host version {host.version!r}")
        return f"{host.id} connected, engine {host.version}"

    def decommission(self) -> str:
        s = self.state
        docker_host_request_decommission(host_id=s.host_id, actor=s.actor)
        orders = s.agent.heartbeat(phase="ready").get("runtime_orders")
        expected = [{"runtime": "docker", "action": "decommission", "host_id": s.host_id}]
        check(orders == expected, f"runtime_orders {orders}, expected {expected}")
        answer = s.agent.handshake("decommissioned", host_id=s.host_id)
        check(answer.get("status") == "decommissioned", f"decommissioned answered {answer}")
        host = DockerHost.objects.get(pk=s.host_id)
        check(host.status == DockerHost.Status.DECOMMISSIONED, f"host status {host.status}")
        check(
            host.client_key_encrypted == "" and host.client_cert_pem == "", "client keypair still on the row"
        )
        return "order delivered, agent confirmed, keypair dropped"

    def revoked(self) -> str:
        rows = list(IssuedCertificate.objects.filter(host_id=self.state.host_id))
        check(len(rows) >= 2, f"{len(rows)} certificates recorded for the host, expected server + client")
        unrevoked = [r.serial for r in rows if r.revoked_at is None]
        check(not unrevoked, f"not revoked: {unrevoked}")
        crl = x509.load_pem_x509_crl(ca_crl_pem().encode())
        listed = {entry.serial_number for entry in crl}
        # The served CRL is the server intermediate's; the client keypair came from the network's client CA.
        servers = [r for r in rows if r.kind == IssuedCertificate.Kind.SERVER]
        missing = [r.serial for r in servers if int(r.serial.replace(":", ""), 16) not in listed]
        check(not missing, f"revoked but missing from the CA's CRL: {missing}")
        return f"{len(rows)} certificates revoked and in the CRL"

    def events_in_order(self) -> str:
        s = self.state
        assigned = Event.objects.filter(
            kind=kinds.MODULE_ASSIGNED, data__template_id=str(s.template.id)
        ).values_list("kind", flat=True)
        recorded = list(assigned) + list(
            Event.objects.filter(instance_id=s.instance.id, kind__startswith=f"{kinds.PREFIX}.")
            .order_by("occurred_at", "id")
            .values_list("kind", flat=True)
        )
        expected = EXPECTED_EVENTS
        if s.probe_refused:  # ready was refused by the platform's probe: no promotion events
            expected = [kinds.READY_PROBE_FAILED if k == kinds.READY else k for k in expected if k != kinds.PROVISIONED]
        check(recorded == expected, f"events {recorded}, expected {expected}")
        return f"{len(recorded)} events"

    # cleanup: also after a failure, also when only some objects were made
    def cleanup(self) -> str:
        s = self.state
        done: list[str] = []
        if s.host_id:
            host = DockerHost.objects.filter(pk=s.host_id).first()
            if host is not None and host.status != DockerHost.Status.DECOMMISSIONED:
                docker_hosts_end_for_instance(instance=host.node_instance, actor=s.actor)
                done.append("host decommissioned")
        if s.template is not None and s.module is not None:
            if ModuleAssignment.objects.filter(node_template=s.template, module=s.module).exists():
                module_unassign_from_template(
                    template_id=str(s.template.id), module_id=str(s.module.id), actor=s.actor
                )
                done.append("module unassigned")
        if s.instance is not None:
            if (
                NodeInstance.objects.filter(pk=s.instance.id)
                .exclude(status=NodeInstance.Status.DELETED)
                .exists()
            ):
                instance_delete(instance_id=str(s.instance.id), actor=s.actor)
                done.append("instance deleted")
        if self.keep:
            return ", ".join(done + ["rows kept (--keep)"])
        purge_throwaway_rows(s)
        done.append("rows removed (events and revoked certificate records stay)")
        return ", ".join(done)


def purge_throwaway_rows(s: SmokeState) -> None:
    """Remove the throwaway rows; the event log and the CA's records of what it issued stay as history."""
    with transaction.atomic():
        if s.instance is not None:
            DockerHost.objects.filter(node_instance_id=s.instance.id).delete()
            NodeInstance.objects.filter(pk=s.instance.id).delete()  # cascades its peers
        if s.network is not None:
            SdwanNetwork.objects.filter(pk=s.network.id).delete()
        if s.template is not None:
            NodeTemplate.objects.filter(pk=s.template.id).delete()  # cascades its assignments


def verify_server_certificate(
    *, cert_pem: str, chain_pem: str, host_id: str, overlay: str, key: ed25519.Ed25519PrivateKey
) -> str:
    """The daemon's certificate: our key, CN = host id, the only SAN = the overlay /128, serverAuth, chain."""
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    chain = x509.load_pem_x509_certificates(chain_pem.encode())
    check(len(chain) >= 2, f"chain has {len(chain)} certificate(s), expected intermediate and root")
    check(cert.public_key() == key.public_key(), "the certificate is not for the CSR's key")
    cn = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    check(cn == [host_id], f"CN {cn}, expected [{host_id}]")
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    ips = [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    check(ips == [str(ipaddress.ip_address(overlay))], f"IP SANs {ips}, expected only {overlay}")
    check(san.get_values_for_type(x509.DNSName) == [], "the certificate carries DNS SANs")
    eku = list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    check(eku == [ExtendedKeyUsageOID.SERVER_AUTH], f"EKU {eku}, expected serverAuth")
    try:
        cert.verify_directly_issued_by(chain[0])
        for child, parent in zip(chain, chain[1:], strict=False):
            child.verify_directly_issued_by(parent)
        chain[-1].verify_directly_issued_by(chain[-1])
    except Exception as exc:  # noqa: BLE001 - InvalidSignature, ValueError, TypeError: all mean "does not verify"
        raise StepFailed(f"the chain does not verify: {type(exc).__name__}: {exc}") from None
    return f"CN {host_id}, SAN {overlay} only, serverAuth, chain of {len(chain)} verifies"
