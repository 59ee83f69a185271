"""Writes for templates and instances."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.events.services import event_record
from apps.nodes import kinds
from apps.nodes.models import NodeInstance, NodeTemplate
from powernode import runtimes, tokens
from powernode.actors import Actor
from powernode.db import update_row
from powernode.errors import ConflictError, NotFound


@dataclass(frozen=True)
class ProvisionedInstance:
    instance: NodeInstance
    agent_token: str  # shown once, stored hashed


def template_get(*, template_id: str) -> NodeTemplate:
    try:
        return NodeTemplate.objects.get(pk=template_id)
    except NodeTemplate.DoesNotExist:
        raise NotFound(f"No node template with id {template_id}.", details={"template_id": str(template_id)})


def instance_get(*, instance_id: str) -> NodeInstance:
    try:
        return NodeInstance.objects.select_related("node_template").get(pk=instance_id)
    except NodeInstance.DoesNotExist:
        raise NotFound(f"No node instance with id {instance_id}.", details={"instance_id": str(instance_id)})


@transaction.atomic
def template_create(*, name: str, description: str = "", actor: Actor) -> NodeTemplate:
    if NodeTemplate.objects.filter(name=name).exists():
        raise ConflictError(f"A node template named {name!r} already exists.", details={"name": name})
    template = NodeTemplate(name=name, description=description)
    template.full_clean()
    template.save()
    event_record(kind=kinds.TEMPLATE_CREATED, actor=actor, data={"template_id": str(template.id), "name": name})
    return template


@transaction.atomic
def instance_provision(*, template_id: str, name: str, actor: Actor) -> ProvisionedInstance:
    template = template_get(template_id=template_id)
    if NodeInstance.objects.filter(name=name).exists():
        raise ConflictError(f"A node instance named {name!r} already exists.", details={"name": name})
    new = tokens.make_token(tokens.AGENT)
    instance = NodeInstance(
        name=name, node_template=template, agent_token_prefix=new.prefix, agent_token_hash=new.token_hash
    )
    instance.full_clean()
    try:
        with transaction.atomic():
            instance.save()
    except IntegrityError:
        raise ConflictError(f"A node instance named {name!r} already exists.", details={"name": name})
    event_record(
        kind=kinds.INSTANCE_PROVISIONED,
        actor=actor,
        instance_id=instance.id,
        data={"name": name, "template_id": str(template.id)},
    )
    return ProvisionedInstance(instance=instance, agent_token=new.token)


@transaction.atomic
def instance_rotate_agent_token(*, instance_id: str, actor: Actor) -> str:
    """A new agent token; the old one stops working at once."""
    instance = NodeInstance.objects.select_for_update().filter(pk=instance_id).first()
    if instance is None:
        raise NotFound(f"No node instance with id {instance_id}.")
    new = tokens.make_token(tokens.AGENT)
    instance.agent_token_prefix, instance.agent_token_hash = new.prefix, new.token_hash
    instance.save(update_fields=["agent_token_prefix", "agent_token_hash"])
    event_record(kind=kinds.INSTANCE_AGENT_TOKEN_ROTATED, actor=actor, instance_id=instance.id)
    return new.token


def instance_record_heartbeat(
    *, instance: NodeInstance, agent_version: str, runtime_report: dict, now: datetime | None = None
) -> NodeInstance:
    """The agent called in: one UPDATE of the changed columns; an event only when it first comes online.

    No event per heartbeat (liveness is ``last_heartbeat_at``); a deleted instance is never revived.
    """
    now = now or timezone.now()
    changes: dict = {"last_heartbeat_at": now}
    if instance.agent_version != agent_version:
        changes["agent_version"] = agent_version
    deferred = instance.get_deferred_fields()
    if "runtime_report" in deferred or instance.runtime_report != runtime_report:
        changes["runtime_report"] = runtime_report
    # Liveness at most every third of an interval (an instance is stale after 1.5 intervals): a watching
    # agent calls again after every change, and each of those need not be an UPDATE.
    recent = now - timedelta(seconds=settings.POWERNODE_HEARTBEAT_INTERVAL_S / 3)
    if (
        len(changes) == 1
        and instance.status == NodeInstance.Status.ONLINE
        and "last_heartbeat_at" not in deferred
        and instance.last_heartbeat_at is not None
        and recent < instance.last_heartbeat_at <= now
    ):
        return instance
    if instance.status == NodeInstance.Status.ONLINE:  # the steady case: every heartbeat at the 60 s interval
        update_row(NodeInstance, instance.pk, changes, unless=("status", NodeInstance.Status.DELETED))
    else:
        live = NodeInstance.objects.filter(pk=instance.pk).exclude(status=NodeInstance.Status.DELETED)
        with transaction.atomic():
            came_online = live.filter(status=NodeInstance.Status.PROVISIONED).update(
                status=NodeInstance.Status.ONLINE, **changes
            )
            if came_online:
                event_record(
                    kind=kinds.INSTANCE_ONLINE,
                    actor=Actor.for_agent(instance),
                    instance_id=instance.id,
                    data={"agent_version": agent_version},
                )
            else:
                live.update(**changes)
        instance.status = NodeInstance.Status.ONLINE
    for field, value in changes.items():
        setattr(instance, field, value)
    return instance


@transaction.atomic
def instance_delete(*, instance_id: str, actor: Actor) -> NodeInstance:
    """Remove an instance: status deleted, agent token revoked, every runtime on it ended at once (the
    Docker runtime decommissions its host).

    The row stays (events and certificates point at it). Deleting twice is a 404 the second time.
    """
    instance = NodeInstance.objects.select_for_update().filter(pk=instance_id).first()
    if instance is None or instance.status == NodeInstance.Status.DELETED:
        raise NotFound(f"No node instance with id {instance_id}.", details={"instance_id": str(instance_id)})
    instance.status = NodeInstance.Status.DELETED
    instance.agent_token_hash = ""  # no token hashes to "": the old token stops working at once
    instance.save(update_fields=["status", "agent_token_hash"])
    event_record(kind=kinds.INSTANCE_DELETED, actor=actor, instance_id=instance.id, data={"name": instance.name})
    for provider in runtimes.providers():
        provider.end_for_instance(instance=instance, actor=actor)
    return instance
