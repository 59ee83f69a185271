"""NodeTemplate and NodeInstance: what an operator provisions and what the agent runs on."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from powernode.ids import uuid7


class NodeTemplate(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class NodeInstance(models.Model):
    class Status(models.TextChoices):
        PROVISIONED = "provisioned", "provisioned (agent not seen yet)"
        ONLINE = "online", "online"
        DELETED = "deleted", "deleted"

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    name = models.CharField(max_length=100, unique=True)
    node_template = models.ForeignKey(NodeTemplate, on_delete=models.PROTECT, related_name="instances")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PROVISIONED)
    agent_token_prefix = models.CharField(max_length=16, unique=True, help_text="public part, for lookup")
    agent_token_hash = models.CharField(max_length=64, help_text="sha256 of the whole token")
    agent_version = models.CharField(max_length=40, blank=True, default="")
    wireguard_public_key = models.CharField(max_length=60, blank=True, default="")
    last_heartbeat_at = models.DateTimeField(null=True, blank=True)
    runtime_report = models.JSONField(default=dict, blank=True, help_text="what the agent last reported")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
