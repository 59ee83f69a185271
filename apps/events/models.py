"""The Event row: what changed, when, by whom, about which instance or host."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from powernode.ids import uuid7


class Event(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    kind = models.CharField(max_length=120)
    occurred_at = models.DateTimeField()
    actor = models.CharField(max_length=150, blank=True, help_text="user name, 'agent:INSTANCE' or 'system'")
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    instance_id = models.UUIDField(null=True, blank=True)
    host_id = models.CharField(max_length=64, blank=True, default="")
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [
            # newest-first scans, filtered by a kind prefix while walking back in time
            models.Index(fields=["-occurred_at", "-id"], name="event_recent_idx"),
            # prefix range on kind then time; pattern ops let PostgreSQL use it for LIKE 'prefix%'
            # under any collation (ignored elsewhere)
            models.Index(
                fields=["kind", "-occurred_at"],
                name="event_kind_time_idx",
                opclasses=["varchar_pattern_ops", "timestamptz_ops"],
            ),
            models.Index(fields=["instance_id", "-occurred_at"], name="event_instance_time_idx"),
            models.Index(fields=["host_id", "-occurred_at"], name="event_host_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} @ {self.occurred_at:%Y-%m-%d %H:%M:%S}"
