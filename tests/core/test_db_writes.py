"""``powernode.db.update_row``, the hot path's one-row UPDATE, writes what ``QuerySet.update`` writes (datetimes,
JSON, text) and leaves alone the rows its ``unless`` excludes; on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from apps.nodes.models import NodeInstance
from apps.nodes.services import instance_provision, template_create
from powernode.actors import Actor
from powernode.db import update_row

pytestmark = [pytest.mark.django_db, pytest.mark.contract]

FIELDS = ("last_heartbeat_at", "agent_version", "runtime_report", "status")


def two_instances() -> tuple[NodeInstance, NodeInstance]:
    actor = Actor(label="test")
    template = template_create(name="db-writes", actor=actor)
    a, b = (instance_provision(template_id=str(template.id), name=f"w-{i}", actor=actor).instance for i in (1, 2))
    return a, b


def test_the_same_changes_read_back_the_same_as_the_orms() -> None:
    ours, orms = two_instances()
    changes = {
        "last_heartbeat_at": timezone.now() - dt.timedelta(seconds=3, microseconds=17),
        "agent_version": "0.9.1",
        "runtime_report": {"docker": {"phase": "ready", "version": "20.10.24"}, "note": "ünïcode\u2028"},
    }
    assert update_row(NodeInstance, ours.pk, changes, unless=("status", NodeInstance.Status.DELETED)) == 1
    NodeInstance.objects.filter(pk=orms.pk).exclude(status=NodeInstance.Status.DELETED).update(**changes)
    read = [NodeInstance.objects.values(*FIELDS).get(pk=pk) for pk in (ours.pk, orms.pk)]
    assert read[0] == read[1]
    assert read[0]["last_heartbeat_at"] == changes["last_heartbeat_at"]
    assert read[0]["runtime_report"] == changes["runtime_report"]
    # a second set of fields is a second statement, built once too
    assert update_row(NodeInstance, ours.pk, {"agent_version": "1.0.0"}) == 1
    assert NodeInstance.objects.get(pk=ours.pk).agent_version == "1.0.0"
    assert NodeInstance.objects.get(pk=orms.pk).agent_version == "0.9.1"  # only the row named


def test_unless_leaves_the_row_alone() -> None:
    deleted, _ = two_instances()
    NodeInstance.objects.filter(pk=deleted.pk).update(status=NodeInstance.Status.DELETED)
    before = NodeInstance.objects.values(*FIELDS).get(pk=deleted.pk)
    changed = update_row(
        NodeInstance, deleted.pk, {"last_heartbeat_at": timezone.now()}, unless=("status", NodeInstance.Status.DELETED)
    )
    assert changed == 0
    assert NodeInstance.objects.values(*FIELDS).get(pk=deleted.pk) == before
