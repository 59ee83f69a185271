"""The event list: filters by kind prefix, instance and host; newest first; never a COUNT(*) of the table."""

from __future__ import annotations

import re

from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.events.models import Event
from powernode.admin_kit import BoundedCountPaginator

URL = "/admin/events/event/"


def kinds(response) -> list[str]:  # noqa: ANN001
    return [e.kind for e in response.context["cl"].result_list]


def test_filters_by_kind_prefix_instance_name_and_host(root_client, pending_host):
    by_prefix = root_client.get(URL, {"kind_prefix": "system.docker.handshake"})
    assert kinds(by_prefix) == ["system.docker.handshake.cert_signed", "system.docker.handshake.wants_cert"]

    by_name = root_client.get(URL, {"instance": "node-1"})
    assert kinds(by_name)[0] == "system.docker.handshake.cert_signed"
    assert "system.docker.runtime.installing" in kinds(by_name)
    assert "system.sdwan.peer.attached" in kinds(by_name)
    assert kinds(root_client.get(URL, {"instance": "no-such-node"})) == []
    by_id = root_client.get(URL, {"instance": pending_host["instance"]["id"]})
    assert kinds(by_id) == kinds(by_name)

    by_host = root_client.get(URL, {"host": pending_host["host_id"], "kind_prefix": "system.docker"})
    assert set(kinds(by_host)) == {
        "system.docker.handshake.cert_signed",
        "system.docker.handshake.wants_cert",
    }
    html = by_host.content.decode()
    assert f'value="{pending_host["host_id"]}"' in html  # the text filters keep each other's values


def test_newest_first(root_client, pending_host):
    events = root_client.get(URL).context["cl"].result_list
    times = [e.occurred_at for e in events]
    assert times == sorted(times, reverse=True) and len(times) >= 5


def test_no_unbounded_count(root_client, pending_host):
    with CaptureQueriesContext(connection) as queries:
        response = root_client.get(URL, {"kind_prefix": "system.docker"})
    assert response.status_code == 200
    counts = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]
    event_table = Event._meta.db_table
    event_counts = [sql for sql in counts if event_table in sql]
    assert event_counts, "the paginator counts (boundedly)"
    for sql in event_counts:
        assert re.search(rf"LIMIT\s+{BoundedCountPaginator.CAP + 1}", sql), sql


def test_count_reads_more_than_the_cap(root_client, pending_host, monkeypatch):
    monkeypatch.setattr(BoundedCountPaginator, "CAP", 3)
    from apps.events.admin import EventAdmin

    monkeypatch.setattr(EventAdmin, "count_cap", 3)
    html = root_client.get(URL).content.decode()
    assert "more than 3 events" in html
