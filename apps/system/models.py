"""Operator permissions (app label ``system``) and operator API tokens."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from powernode.ids import uuid7
from powernode.permissions import PERMISSIONS


class SystemPermission(models.Model):
    """Holds no rows: it only anchors the ``system.*`` permissions operators are granted."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = PERMISSIONS

    def __str__(self) -> str:
        return "system permissions"


class OperatorToken(models.Model):
    """A Bearer token for an operator; only its hash is kept."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="operator_tokens")
    prefix = models.CharField(max_length=16, unique=True)
    token_hash = models.CharField(max_length=64)
    name = models.CharField(max_length=100, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="no expiry when empty")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user})"
