"""300 simulated agents walk the docker handshake and heartbeat through HAProxy while one of three platform
processes is killed with SIGKILL and started again: nothing is lost, nothing is done twice.

Real components only: PostgreSQL (one database for the three processes), OpenBao (the VaultCaAdapter signs
every certificate, the KV outbox writes every client key), HAProxy health-checking each process on /readyz,
scripts/serve.sh (gunicorn, one uvicorn worker per process) and the outbox worker (powernode_worker).
Two choices of this test, as a load test:
- the platform's probe of dockerd at ``ready`` is off (POWERNODE_DOCKER_READY_PROBE=false): the simulated
  agents have no dockerd behind their overlay address (the lab runs the probe against real daemons);
- the platform keeps the shipped heartbeat interval (60 s) but the simulated agents heartbeat every ~2 s and
  retry a failed request after 0.1 s × 2^n (capped at 2 s) instead of 1 s × 2^n (capped at 60 s), so the
  kill lands among as many requests as possible.
The error rate (failed requests / all requests; every failure retried) is printed, not asserted.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.cluster.conftest import AGENTS
from tests.cluster.harness import Backoff, Cluster, Http, SimAgent, Tally, make_agents

pytestmark = pytest.mark.cluster

HEARTBEAT_EVERY_S = 2.0
START_SPREAD_S = 3.0  # agents come up over this many seconds, not all in one instant
DEADLINE_S = 180  # a guard against a hang, not a measurement


def _serial(cert_pem: str) -> str:
    hex_ = f"{x509.load_pem_x509_certificate(cert_pem.encode()).serial_number:x}"
    hex_ = hex_.zfill(len(hex_) + len(hex_) % 2)
    return ":".join(hex_[i : i + 2] for i in range(0, len(hex_), 2))


def _public_key(pem: str, *, csr: bool) -> bytes:
    loaded = x509.load_pem_x509_csr(pem.encode()) if csr else x509.load_pem_x509_certificate(pem.encode())
    return loaded.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


async def _fleet_with_a_kill(cluster: Cluster, agents: list[SimAgent]) -> dict:
    tally, backoff, stop = Tally(), Backoff(), asyncio.Event()
    port = cluster.haproxy.port

    async def life(agent: SimAgent, delay: float) -> None:
        await asyncio.sleep(delay)
        http = Http(port)
        try:
            await agent.heartbeat(http, tally, backoff=backoff)
            await agent.walk(http, tally, backoff=backoff)
            while not stop.is_set():
                try:
                    await asyncio.wait_for(stop.wait(), HEARTBEAT_EVERY_S * random.uniform(0.5, 1.5))
                except TimeoutError:
                    await agent.heartbeat(http, tally, backoff=backoff)
        finally:
            http.close()

    tasks = [asyncio.create_task(life(a, random.uniform(0, START_SPREAD_S))) for a in agents]
    victim = cluster.processes[1]
    haproxy = cluster.haproxy
    figures: dict = {}

    async def until(check, what: str, timeout: float) -> None:  # noqa: ANN001
        deadline = time.monotonic() + timeout
        while not check():
            failed = [t for t in tasks if t.done() and t.exception()]
            if failed:
                raise failed[0].exception()
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}")
            await asyncio.sleep(0.05)

    def connected() -> int:
        return sum(a.status == "connected" for a in agents)

    try:
        # SIGKILL while walks are under way: a quarter of the fleet connected, the rest mid-handshake
        await until(lambda: connected() >= AGENTS // 4, "a quarter of the fleet connected", DEADLINE_S)
        figures["connected_at_kill"] = connected()
        requests_at_kill = tally.total
        figures["killed_at"] = time.monotonic()
        victim.kill()
        figures["down_s"] = await asyncio.to_thread(haproxy.wait_status, victim.name, "DOWN", 30)
        await asyncio.sleep(3)
        figures["connected_at_restart"] = connected()
        restarted = time.monotonic()
        victim.start()
        await asyncio.to_thread(victim.wait_ready)
        await asyncio.to_thread(haproxy.wait_status, victim.name, "UP", 30)
        figures["up_at"] = time.monotonic()
        figures["restart_to_up_s"] = figures["up_at"] - restarted
        served_before = int(haproxy.stats()[victim.name]["stot"])
        await until(lambda: connected() == AGENTS, "every agent connected", DEADLINE_S)
        # the restarted process takes its share again (roundrobin): 100 more requests served by it
        await until(
            lambda: int(haproxy.stats()[victim.name]["stot"]) >= served_before + 100,
            "the restarted process to serve again", 60,
        )
        figures["requests_during_and_after_kill"] = tally.total - requests_at_kill
    finally:
        stop.set()
        done = await asyncio.gather(*tasks, return_exceptions=True)
    errors = [d for d in done if isinstance(d, BaseException)]
    assert not errors, errors[:3]
    figures["tally"] = tally
    return figures


def test_300_agents_connect_through_haproxy_while_a_process_is_killed_and_restarted(cluster: Cluster) -> None:
    agents = make_agents(cluster.seed)
    started = time.monotonic()
    figures = asyncio.run(_fleet_with_a_kill(cluster, agents))
    tally: Tally = figures["tally"]
    print(
        f"\ncluster: {AGENTS} agents, 3 processes behind HAProxy, p2 SIGKILLed with "
        f"{figures['connected_at_kill']} connected; HAProxy marked it DOWN after {figures['down_s']:.2f} s; "
        f"restarted {figures['restart_to_up_s']:.1f} s to UP; all connected after {time.monotonic() - started:.1f} s"
    )
    print(f"cluster: {tally.line()}; failed by request kind: {dict(tally.by_phase)}")
    killed, up = figures["killed_at"], figures["up_at"]

    def window(t: float) -> str:
        if t < killed:
            return "before the kill"
        return "kill to +1 s" if t < killed + 1 else "until p2 UP" if t < up else "after p2 UP"

    windows = Counter(f"{window(t)}: {reason}" for t, reason in tally.failed_at)
    print(f"cluster: failures by time: {dict(windows)}")

    # every agent ends connected, on the host the platform recorded for its instance
    assert all(a.status == "connected" for a in agents)
    hosts = cluster.query(
        "SELECT node_instance_id::text, id, status, server_cert_serial FROM docker_hosts_dockerhost "
        "WHERE status <> 'decommissioned'"
    )
    by_instance: dict[str, list[tuple]] = {}
    for instance_id, host_id, status, serial in hosts:
        by_instance.setdefault(instance_id.replace("-", ""), []).append((host_id, status, serial))
    # no instance has two live hosts
    assert {len(v) for v in by_instance.values()} == {1}
    assert len(by_instance) == AGENTS
    for agent in agents:
        ((host_id, status, serial),) = by_instance[agent.instance_id.replace("-", "")]
        assert (agent.host_id, status) == (host_id, "connected")
        # the certificate the agent holds is the host's current one, issued for the agent's own key
        assert _serial(agent.cert_pem) == serial
        assert _public_key(agent.cert_pem, csr=False) == _public_key(agent.csr_pem, csr=True)

    # no certificate issued twice for one CSR walk: one server certificate per host, also for the agents that
    # sent wants_cert again after a failure (when the first one had been signed and committed before its answer
    # was lost to the kill, the platform sends that certificate again: docs/AGENT_PROTOCOL.md)
    certs = dict(
        cluster.query("SELECT host_id, count(*) FROM pki_issuedcertificate WHERE kind = 'server' GROUP BY host_id")
    )
    twice = {a.host_id: certs[a.host_id] for a in agents if certs[a.host_id] != 1}
    assert not twice, twice
    assert len(certs) == AGENTS
    resent = dict(
        cluster.query(
            "SELECT host_id, count(*) FROM events_event WHERE kind = 'system.docker.handshake.wants_cert' "
            "AND data ? 'resent_serial' GROUP BY host_id"
        )
    )
    retried = sum(a.wants_cert_attempts > 1 for a in agents)
    print(
        f"cluster: {retried} agents sent wants_cert more than once; {len(resent)} of them had been signed and "
        "committed before the answer was lost, and were sent that certificate again"
    )
    # every certificate the database records was signed by OpenBao (and OpenBao's extra ones were cut off
    # by the kill before the database committed them: signed, never delivered)
    recorded = {s for (s,) in cluster.query("SELECT serial FROM pki_issuedcertificate")}
    in_openbao: set[str] = set()
    _, mounts = cluster.vault_get("sys/mounts")
    for mount, info in mounts.get("data", mounts).items():  # pki_int (servers), pki_clients/<network> (clients)
        if isinstance(info, dict) and info.get("type") == "pki":
            in_openbao |= {s.replace("-", ":").lower() for s in cluster.vault_list(f"{mount}certs")}
    assert recorded <= in_openbao, sorted(recorded - in_openbao)[:5]
    print(
        f"cluster: {len(recorded)} certificates recorded, all in OpenBao; OpenBao holds "
        f"{len(in_openbao - recorded)} more (CA certificates and signatures whose request was killed)"
    )

    # no outbox row lost: with the worker running beside the servers, one more run of its outbox job (so the
    # check does not wait for its interval) leaves every row sent, each in OpenBao
    print("cluster: outbox job:", cluster.manage("powernode_worker", "--once", "--job", "vault_outbox").strip())
    rows = cluster.query("SELECT status, operation, path FROM pki_vaultkvoutbox")
    assert rows and {status for status, _, _ in rows} == {"done"}, sorted({s for s, _, _ in rows})
    for _, operation, path in rows:
        status, _ = cluster.vault_get(f"secret/metadata/{path}")
        assert status == (200 if operation == "write" else 404), (operation, path, status)
    assert len({path for _, _, path in rows}) >= AGENTS  # at least the client key of every host
    print(f"cluster: {len(rows)} outbox rows, all sent and present in OpenBao KV")
