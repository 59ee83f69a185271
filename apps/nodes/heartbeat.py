"""The agent heartbeat: record that the agent called in, answer the instance's desired state.

This is the platform's hottest path (every agent, every interval). Its reads are three small indexed
SELECTs written as SQL: building the same querysets through the ORM cost four times their execution
on every call (measured in bench/bench_handshake.py). Writes still go through the services.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps as django_apps
from django.conf import settings

from apps.modules.models import Module, ModuleAssignment
from apps.nodes.models import NodeInstance
from apps.nodes.rawsql import aware, columns, db_uuid, fetch, uuid_text
from apps.nodes.services import instance_record_heartbeat
from apps.sdwan import addressing
from apps.sdwan.models import SdwanNetwork, SdwanPeer
from apps.sdwan.services import HUB_INDEX, instance_record_wireguard_key


def agent_heartbeat(
    *,
    instance: NodeInstance,
    agent_version: str,
    runtimes: dict[str, Any],
    wireguard_public_key: str | None = None,
) -> dict[str, Any]:
    """Record the heartbeat (and the WireGuard key when it changed); return the desired state."""
    instance_record_heartbeat(instance=instance, agent_version=agent_version, runtime_report=runtimes)
    if wireguard_public_key and wireguard_public_key != instance.wireguard_public_key:
        instance_record_wireguard_key(instance=instance, public_key=wireguard_public_key)
    return instance_desired_state(instance=instance)


def instance_desired_state(*, instance: NodeInstance) -> dict[str, Any]:
    """What the agent should run: SDWAN memberships, assigned modules, runtime orders, the interval."""
    assignments = assigned_modules(template_id=instance.node_template_id)
    orders: list[dict[str, Any]] = []
    if django_apps.is_installed("apps.docker_hosts"):
        from apps.docker_hosts.selectors import runtime_orders

        orders = runtime_orders(
            instance_id=instance.id,
            assigned={a["runtime"]: a["assigned_at"] for a in assignments},  # oldest first: newest wins
        )
    return {
        "instance_id": str(instance.id),
        "sdwan": sdwan_memberships(instance_id=instance.id),
        "assignments": [
            {"module_id": a["module_id"], "name": a["name"], "runtime": a["runtime"]} for a in assignments
        ],
        "runtime_orders": orders,
        "heartbeat_interval_s": settings.POWERNODE_HEARTBEAT_INTERVAL_S,
    }


# -- the reads, as SQL: portable (SQLite and PostgreSQL), names taken from the models ----------------


def _sql_assigned_modules() -> str:
    a, m, col = ModuleAssignment._meta, Module._meta, columns(ModuleAssignment)
    return (
        f"SELECT a.{col['created_at']}, m.id, m.name, m.runtime FROM {a.db_table} a "
        f"JOIN {m.db_table} m ON m.id = a.{col['module']} "
        f"WHERE a.{col['node_template']} = %s ORDER BY a.{col['created_at']}, a.id"
    )


def _sql_sdwan_memberships() -> str:
    p, n, col = SdwanPeer._meta, SdwanNetwork._meta, columns(SdwanPeer)
    return (
        f"SELECT p.id, p.{col['overlay_address']}, n.id, n.name, n.prefix, n.hub_public_key, n.hub_endpoint "
        f"FROM {p.db_table} p JOIN {n.db_table} n ON n.id = p.{col['network']} "
        f"WHERE p.{col['node_instance']} = %s ORDER BY p.{col['created_at']}, p.id"
    )


def assigned_modules(*, template_id: Any) -> list[dict[str, Any]]:
    """The template's assigned modules, oldest assignment first."""
    return [
        {"assigned_at": aware(created), "module_id": uuid_text(module_id), "name": name, "runtime": runtime}
        for created, module_id, name, runtime in fetch(_sql_assigned_modules(), [db_uuid(template_id)])
    ]


def sdwan_memberships(*, instance_id: Any) -> list[dict[str, Any]]:
    """The instance's SDWAN networks with its /128 and the network's hub, as the agent configures them."""
    rows = fetch(_sql_sdwan_memberships(), [db_uuid(instance_id)])
    return [
        {
            "network_id": uuid_text(network_id),
            "network_name": name,
            "peer_id": uuid_text(peer_id),
            "prefix": prefix,
            "overlay_address": overlay,
            "hub": {
                "public_key": hub_key,
                "endpoint": hub_endpoint or None,
                "overlay_address": addressing.address_at(prefix, HUB_INDEX),
            },
        }
        for peer_id, overlay, network_id, name, prefix, hub_key, hub_endpoint in rows
    ]
