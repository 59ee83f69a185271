"""The agent heartbeat: record that the agent called in, answer the instance's desired state.

Kept to a handful of indexed queries and one UPDATE: every agent calls this every interval.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps as django_apps
from django.conf import settings

from apps.modules.models import ModuleAssignment
from apps.nodes.models import NodeInstance
from apps.nodes.services import instance_record_heartbeat
from apps.sdwan import addressing
from apps.sdwan.models import SdwanPeer
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
    assignments = list(
        ModuleAssignment.objects.filter(node_template_id=instance.node_template_id)
        .select_related("module")
        .only("id", "created_at", "module__id", "module__name", "module__runtime")
        .order_by("created_at")
    )
    orders: list[dict[str, Any]] = []
    if django_apps.is_installed("apps.docker_hosts"):
        from apps.docker_hosts.selectors import runtime_orders

        orders = runtime_orders(instance=instance, assignments=assignments)
    return {
        "instance_id": str(instance.id),
        "sdwan": _sdwan_memberships(instance),
        "assignments": [
            {"module_id": str(a.module.id), "name": a.module.name, "runtime": a.module.runtime}
            for a in assignments
        ],
        "runtime_orders": orders,
        "heartbeat_interval_s": settings.POWERNODE_HEARTBEAT_INTERVAL_S,
    }


def _sdwan_memberships(instance: NodeInstance) -> list[dict[str, Any]]:
    peers = (
        SdwanPeer.objects.filter(node_instance_id=instance.id)
        .select_related("network")
        .only(
            "id",
            "overlay_address",
            "network__id",
            "network__name",
            "network__prefix",
            "network__hub_public_key",
            "network__hub_endpoint",
        )
        .order_by("created_at")
    )
    return [
        {
            "network_id": str(p.network.id),
            "network_name": p.network.name,
            "peer_id": str(p.id),
            "prefix": p.network.prefix,
            "overlay_address": p.overlay_address,
            "hub": {
                "public_key": p.network.hub_public_key,
                "endpoint": p.network.hub_endpoint or None,
                "overlay_address": addressing.address_at(p.network.prefix, HUB_INDEX),
            },
        }
        for p in peers
    ]
