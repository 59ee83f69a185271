"""Events: written in the transaction of their change, read newest first by kind prefix."""

from __future__ import annotations

import pytest
from django.db import transaction

from apps.events.models import Event
from apps.events.selectors import events_recent
from apps.events.services import event_record
from apps.nodes.models import NodeTemplate
from apps.nodes.services import template_create


def test_event_outside_a_transaction_is_refused(db):
    # pytest-django wraps tests in a transaction; leave it to see the guard
    with pytest.raises(RuntimeError, match="inside the transaction"):
        transaction.get_connection().in_atomic_block = False
        try:
            event_record(kind="system.test")
        finally:
            transaction.get_connection().in_atomic_block = True


@pytest.mark.django_db(transaction=True)
def test_change_and_event_commit_or_roll_back_together(admin_actor):
    class Boom(Exception):
        pass

    with pytest.raises(Boom), transaction.atomic():
        template_create(name="doomed", actor=admin_actor)
        raise Boom
    assert not NodeTemplate.objects.filter(name="doomed").exists()
    assert not Event.objects.filter(kind="system.template.created").exists()
    template_create(name="kept", actor=admin_actor)
    assert Event.objects.filter(kind="system.template.created", data__name="kept").count() == 1


def test_recent_events_newest_first_with_prefix_and_limit(api):
    with transaction.atomic():
        for i in range(5):
            event_record(kind="system.docker.handshake.wants_cert", data={"i": i})
            event_record(kind="system.sdwan.peer.attached", data={"i": i})
            event_record(kind="system.dockerish.other", data={"i": i})
    events = api.ok("recent_events", {"kind_prefix": "system.docker.", "limit": 3})["events"]
    assert [e["data"]["i"] for e in events] == [4, 3, 2]
    assert {e["kind"] for e in events} == {"system.docker.handshake.wants_cert"}
    assert set(events[0]) == {"id", "kind", "occurred_at", "actor", "instance_id", "host_id", "data"}
    everything = api.ok("recent_events", {})["events"]
    assert len(everything) == 15
    occurred = [e["occurred_at"] for e in everything]
    assert occurred == sorted(occurred, reverse=True)


def test_selector_caps_the_limit(db):
    with transaction.atomic():
        for _ in range(3):
            event_record(kind="system.x")
    assert len(events_recent(limit=10_000)) == 3


def test_events_resource_filters(api):
    with transaction.atomic():
        event_record(kind="system.docker.provisioned", host_id="host-1")
        event_record(kind="system.sdwan.peer.attached")
    response = api.client.get("/api/v1/events/", {"kind_prefix": "system.docker", "host_id": "host-1"})
    assert response.status_code == 200
    assert [e["kind"] for e in response.json()["results"]] == ["system.docker.provisioned"]
