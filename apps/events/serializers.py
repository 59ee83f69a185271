"""Output shape of an event."""

from __future__ import annotations

from rest_framework import serializers

from apps.events.models import Event


class EventSerializer(serializers.ModelSerializer):
    class Meta:
        model = Event
        fields = ["id", "kind", "occurred_at", "actor", "instance_id", "host_id", "data"]
