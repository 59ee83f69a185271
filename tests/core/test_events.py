"""Events: written in the transaction of their change, read newest first by kind prefix."""

from __future__ import annotations

import pytest
from django.db import transaction

from apps.docker_hosts.kinds import DECOMMISSION_SEQUENCE, PROVISIONING_SEQUENCE
from apps.events.models import Event
from apps.events.selectors import events_recent
from apps.events.services import event_record
from apps.nodes.models import NodeTemplate
from apps.nodes.services import template_create
from powernode import event_kinds

TEST_KINDS = ("system.test", "system.dockerish.other", "system.x")


@pytest.fixture(autouse=True)
def test_kinds(monkeypatch):
    """Kinds only these tests record, declared for the test's duration (the catalogue stays clean)."""
    for kind in TEST_KINDS:
        monkeypatch.setitem(event_kinds._KINDS, kind, "a kind used only by tests/core/test_events.py")


def test_an_undeclared_kind_is_refused_and_nothing_is_written(db):
    with pytest.raises(event_kinds.UndeclaredEventKind, match="system.docker.handshake.wants_certs"):
        with transaction.atomic():
            event_record(kind="system.docker.handshake.wants_certs")  # a typo of a declared kind
    assert not Event.objects.exists()


# DESIGN §3, spelled as the design spells it: the one place outside the catalogue that writes these out
DESIGN_PROVISIONING = (
    "system.docker.module.assigned",
    "system.docker.runtime.installing",
    "system.docker.handshake.wants_cert",
    "system.docker.handshake.cert_signed",
    "system.docker.handshake.wants_config",
    "system.docker.handshake.ready",
    "system.docker.provisioned",
)
DESIGN_DECOMMISSION = ("system.docker.decommission.requested", "system.docker.decommissioned")
DESIGN_OTHER_KINDS = (
    "system.docker.handshake.failed",
    "system.docker.module.unassigned",
    "system.sdwan.peer.attached",
    "system.sdwan.access_grant.created",
)


def test_the_catalogues_sequences_are_design_section_3():
    assert PROVISIONING_SEQUENCE == DESIGN_PROVISIONING
    assert DECOMMISSION_SEQUENCE == DESIGN_DECOMMISSION


def test_every_kind_in_design_section_3_is_declared():
    for kind in (*DESIGN_PROVISIONING, *DESIGN_DECOMMISSION, *DESIGN_OTHER_KINDS):
        assert event_kinds.is_declared(kind), kind


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
