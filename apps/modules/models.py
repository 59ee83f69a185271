"""Module (a catalog entry with a lifecycle) and ModuleAssignment (module on a template)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from apps.nodes.models import NodeTemplate
from powernode.ids import uuid7


class Module(models.Model):
    class Lifecycle(models.TextChoices):
        DRAFT = "draft"
        PUBLISHED = "published"
        LIVE = "live"
        RETIRED = "retired"

    class Runtime(models.TextChoices):
        DOCKER = "docker"
        K3S = "k3s"
        NONE = "none"

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    name = models.CharField(max_length=100)
    version = models.CharField(max_length=40)
    runtime = models.CharField(max_length=20, choices=Runtime.choices, default=Runtime.NONE)
    lifecycle_state = models.CharField(max_length=20, choices=Lifecycle.choices, default=Lifecycle.DRAFT)
    blessed = models.BooleanField(default=False, help_text="assignable before live, with override")
    description = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "version"]
        constraints = [models.UniqueConstraint(fields=["name", "version"], name="module_name_version_unique")]

    def __str__(self) -> str:
        return f"{self.name} {self.version}"


class ModuleAssignment(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    node_template = models.ForeignKey(NodeTemplate, on_delete=models.CASCADE, related_name="assignments")
    module = models.ForeignKey(Module, on_delete=models.PROTECT, related_name="assignments")
    override = models.BooleanField(default=False, help_text="assigned while not live (blessed module)")
    assigned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["node_template", "module"], name="assignment_template_module_unique")
        ]

    def __str__(self) -> str:
        return f"{self.module} → {self.node_template}"
