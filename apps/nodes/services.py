"""Writes for templates and instances."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import IntegrityError, transaction

from apps.events.services import event_record
from apps.nodes.models import NodeInstance, NodeTemplate
from powernode import tokens
from powernode.actors import Actor
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
    event_record(kind="system.template.created", actor=actor, data={"template_id": str(template.id), "name": name})
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
        kind="system.instance.provisioned",
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
    event_record(kind="system.instance.agent_token_rotated", actor=actor, instance_id=instance.id)
    return new.token
