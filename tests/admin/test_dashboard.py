"""The admin index as a fleet dashboard: hosts by status, heartbeat age (stale flagged), failures, events."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from apps.nodes.models import NodeInstance, NodeTemplate
from apps.nodes.selectors import heartbeat_of, stale_after
from tests.factories import NodeInstanceFactory


def test_index_shows_hosts_by_status_stale_instances_failures_and_events(
    root_client, api, pending_host, settings
):
    settings.POWERNODE_HEARTBEAT_INTERVAL_S = 60
    NodeInstanceFactory(
        node_template=NodeTemplate.objects.get(pk=pending_host["template"]["id"]),
        name="quiet-3",
        last_heartbeat_at=timezone.now() - dt.timedelta(seconds=91),
    )
    pending_host["agent"].heartbeat()
    pending_host["agent"].ok("failed", error="dockerd exited: bind: cannot assign requested address")

    response = root_client.get("/admin/")
    html = response.content.decode()
    fleet = response.context["fleet"]
    assert dict((s, n) for s, _, n in fleet.hosts_by_status)["failed"] == 1
    assert fleet.instances_stale == 1
    rows = {row.instance.name: row.heartbeat.state for row in fleet.instances}
    assert rows == {"quiet-3": "stale", "node-1": "fresh"}
    assert fleet.instances[0].instance.name == "quiet-3"  # the worst first
    assert 'class="pn-row-stale"' in html
    assert "cannot assign requested address" in html
    assert "system.docker.handshake.failed" in html
    assert 'id="pn-events"' in html


def test_stale_is_one_and_a_half_intervals(settings):
    settings.POWERNODE_HEARTBEAT_INTERVAL_S = 60
    now = timezone.now()
    fresh = NodeInstance(last_heartbeat_at=now - dt.timedelta(seconds=89))
    stale = NodeInstance(last_heartbeat_at=now - dt.timedelta(seconds=91))
    assert stale_after() == dt.timedelta(seconds=90)
    assert heartbeat_of(fresh, now=now).state == "fresh"
    assert heartbeat_of(stale, now=now).state == "stale"
    assert heartbeat_of(NodeInstance(), now=now).state == "never"
    assert [heartbeat_of(i, now=now).stale for i in (fresh, stale, NodeInstance())] == [False, True, True]


def test_events_are_hidden_without_events_view(db, django_user_model, client):
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user("fleet-only", password="pw", is_staff=True)
    user.user_permissions.add(
        Permission.objects.get(content_type__app_label="system", codename="docker_view")
    )
    client.force_login(user)
    html = client.get("/admin/").content.decode()
    assert 'class="pn-cards"' in html and 'id="pn-events"' not in html
