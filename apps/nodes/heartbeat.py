"""The agent heartbeat: record that the agent called in, answer the instance's desired state.

This is the platform's hottest path (every agent, every interval): per heartbeat one SELECT to
authenticate, one UPDATE, and one SELECT for the desired state, written as SQL because building the
equivalent querysets through the ORM cost several times their execution (bench/bench_handshake.py).
"""

from __future__ import annotations

import functools
import hashlib
import json
from typing import Any

from django.conf import settings

from apps.modules.models import Module, ModuleAssignment
from apps.nodes.models import NodeInstance
from apps.nodes.services import instance_record_heartbeat
from apps.sdwan import addressing
from apps.sdwan.models import SdwanNetwork, SdwanPeer
from apps.sdwan.services import HUB_INDEX, instance_record_wireguard_key
from powernode import watch
from powernode.db import columns, db_uuid, fetch, inet_text, text_datetime, uuid_text
from powernode.runtimes import RuntimeProvider
from powernode.runtimes import providers as runtime_providers


def agent_heartbeat(
    *,
    instance: NodeInstance,
    agent_version: str,
    runtimes: dict[str, Any],
    wireguard_public_key: str | None = None,
) -> dict[str, Any]:
    """Record the heartbeat (and the WireGuard key when it changed); return the desired state.

    A refused key (``PeerKeyConflictError``, 409) refuses the whole heartbeat before anything is written.
    """
    if wireguard_public_key and wireguard_public_key != instance.wireguard_public_key:
        instance_record_wireguard_key(instance=instance, public_key=wireguard_public_key)
    instance_record_heartbeat(instance=instance, agent_version=agent_version, runtime_report=runtimes)
    return instance_desired_state(instance=instance)


def instance_desired_state(*, instance: NodeInstance) -> dict[str, Any]:
    """What the agent should run: SDWAN memberships, assigned modules, runtime orders, the interval."""
    providers = runtime_providers()
    rows = desired_state_rows(instance=instance, providers=providers)
    assignments = sorted(rows["a"], key=lambda a: a["assigned_at"])
    assigned = {a["runtime"]: a["assigned_at"] for a in assignments}  # oldest first: the newest wins
    orders: list[dict[str, Any]] = []
    for provider in providers:
        orders += provider.heartbeat_orders(
            rows=rows["runtimes"].get(provider.name, []), assigned_at=assigned.get(provider.name)
        )
    answer = {
        "instance_id": str(instance.id),
        "sdwan": [m for _, m in sorted(rows["p"], key=lambda pair: pair[0])],
        "assignments": [
            {"module_id": a["module_id"], "name": a["name"], "runtime": a["runtime"]} for a in assignments
        ],
        "runtime_orders": orders,
        "heartbeat_interval_s": settings.POWERNODE_HEARTBEAT_INTERVAL_S,
    }
    answer["desired_version"] = desired_version(answer)
    return answer


def desired_version(answer: dict[str, Any]) -> str:
    """The opaque version of a desired state: a digest of the answer itself, so it changes exactly when
    anything the agent is told changes, whichever input moved (about 10 µs; bench/bench_watch.py)."""
    body = json.dumps(answer, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.blake2b(body.encode(), digest_size=16).hexdigest()


def instance_watch_topics(*, instance: NodeInstance, answer: dict[str, Any] | None = None) -> set[str]:
    """What a held heartbeat watches: the instance, its template (assignments) and, once the answer is
    known, the networks it is a member of (their hub keys and endpoints)."""
    topics = {watch.instance_topic(instance.id), watch.template_topic(instance.node_template_id)}
    for membership in (answer or {}).get("sdwan", []):
        topics.add(watch.network_topic(membership["network_id"]))
    return topics


# -- the read, as SQL ------------------------------------------------------------------------------
# One round trip for the instance's memberships, its template's modules and each runtime's rows (the
# Docker runtime: the newest host): a UNION ALL of indexed SELECTs whose columns are all text (portable:
# SQLite and PostgreSQL). Each app writes its own part, with table and column names taken from its models;
# a runtime's part comes from its provider (RuntimeProvider.heartbeat_sql) and is tagged with its name.


def _peers_part() -> str:
    p, n, col = SdwanPeer._meta, SdwanNetwork._meta, columns(SdwanPeer)
    return (
        f"SELECT 'p', CAST(p.{col['created_at']} AS TEXT), CAST(p.id AS TEXT), "
        f"CAST(p.{col['overlay_address']} AS TEXT), CAST(n.id AS TEXT), n.name, n.prefix, n.hub_public_key, "
        f"n.hub_endpoint FROM {p.db_table} p JOIN {n.db_table} n ON n.id = p.{col['network']} "
        f"WHERE p.{col['node_instance']} = %s"
    )


def _assignments_part() -> str:
    a, m, col = ModuleAssignment._meta, Module._meta, columns(ModuleAssignment)
    return (
        f"SELECT 'a', CAST(a.{col['created_at']} AS TEXT), CAST(m.id AS TEXT), m.name, m.runtime, "
        f"NULL, NULL, NULL, NULL FROM {a.db_table} a JOIN {m.db_table} m ON m.id = a.{col['module']} "
        f"WHERE a.{col['node_template']} = %s"
    )


@functools.lru_cache(maxsize=16)
def _desired_state_sql(providers: tuple[RuntimeProvider, ...]) -> tuple[str, int]:
    """The heartbeat's one SELECT for these runtimes, and how many runtime parts it has (each takes the
    instance id). Built once per set of registered runtimes, not per heartbeat."""
    runtime_parts = [sql for sql in (p.heartbeat_sql() for p in providers) if sql]
    return " UNION ALL ".join([_peers_part(), _assignments_part(), *runtime_parts]), len(runtime_parts)


def desired_state_rows(
    *, instance: NodeInstance, providers: tuple[RuntimeProvider, ...] | None = None
) -> dict[str, Any]:
    """The rows behind a heartbeat answer: ``p`` memberships, ``a`` assignments, and ``runtimes``: each
    runtime's rows (its seven value columns) by runtime name."""
    sql, runtime_parts = _desired_state_sql(runtime_providers() if providers is None else providers)
    instance_id = db_uuid(instance.id)
    params = [instance_id, db_uuid(instance.node_template_id), *([instance_id] * runtime_parts)]
    out: dict[str, Any] = {"p": [], "a": [], "runtimes": {}}
    for kind, sort_key, *cols in fetch(sql, params):
        if kind == "p":
            out["p"].append((text_datetime(sort_key), _membership(*cols)))
        elif kind == "a":
            module_id, name, runtime = cols[:3]
            out["a"].append(
                {
                    "assigned_at": text_datetime(sort_key),
                    "module_id": uuid_text(module_id),
                    "name": name,
                    "runtime": runtime,
                }
            )
        else:
            out["runtimes"].setdefault(kind, []).append(tuple(cols))
    return out


@functools.lru_cache(maxsize=4096)
def hub_address(prefix: str) -> str:
    """The hub's overlay address in a network; cached: a prefix never changes, and parsing one costs."""
    return addressing.address_at(prefix, HUB_INDEX)


def _membership(
    peer_id: str, overlay: str, network_id: str, name: str, prefix: str, hub_key: str, hub_endpoint: str
) -> dict[str, Any]:
    return {
        "network_id": uuid_text(network_id),
        "network_name": name,
        "peer_id": uuid_text(peer_id),
        "prefix": prefix,
        "overlay_address": inet_text(overlay),
        "hub": {
            "public_key": hub_key or None,  # null until the hub reported its key: the agent sets no hub peer
            "endpoint": hub_endpoint or None,
            "overlay_address": hub_address(prefix),
        },
    }
