"""``manage.py rotate_agent_token <instance id or name>``: a new agent token; the old one stops at once."""

from __future__ import annotations

import uuid
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.nodes.models import NodeInstance
from apps.nodes.services import instance_rotate_agent_token
from powernode.actors import Actor
from powernode.errors import ApplicationError


class Command(BaseCommand):
    help = (
        "Issue a new agent token for an instance (printed once, stored hashed); the old token stops working."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("instance", help="the instance's id or name")

    def handle(self, *args: Any, instance: str, **options: Any) -> None:
        row = NodeInstance.objects.filter(name=instance).first()
        if row is None:
            try:
                row = NodeInstance.objects.filter(pk=uuid.UUID(instance)).first()
            except ValueError:  # not a UUID: it was meant as a name
                row = None
        if row is None or row.status == NodeInstance.Status.DELETED:
            raise CommandError(f"No live node instance with id or name {instance!r}.")
        try:
            token = instance_rotate_agent_token(
                instance_id=str(row.id), actor=Actor(label="cli:rotate_agent_token")
            )
        except ApplicationError as exc:
            raise CommandError(exc.message)
        # Only the token on stdout, so it can be piped into the agent's configuration.
        self.stdout.write(token)
