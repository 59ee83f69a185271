"""Every list resource caps ``limit`` (400 in the error shape past it, never a 500); the event log pages by cursor."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import transaction

from apps.events import services as event_services
from apps.events.models import Event
from apps.sdwan import kinds as sdwan_kinds
from powernode.pagination import MAX_LIMIT
from powernode.urls import router

pytestmark = pytest.mark.contract

LISTS = [f"/api/v1/{prefix}/" for prefix, _viewset, _basename in router.registry]
BAD_LIMITS = ["17864763640654961049600", str(MAX_LIMIT + 1), "0", "-1", "ten", "1e3", " 5"]


@pytest.mark.parametrize("path", LISTS)
@pytest.mark.parametrize("limit", BAD_LIMITS)
def test_a_limit_past_the_cap_or_not_a_number_is_400(api, path, limit):
    response = api.client.get(path, {"limit": limit})
    assert response.status_code == 400, response.content[:300]
    error = response.json()["error"]
    assert error["type"] == "ValidationError" and "limit" in error["message"]
    assert error["details"]["maximum"] == MAX_LIMIT


@pytest.mark.parametrize("path", [p for p in LISTS if p != "/api/v1/events/"])
@pytest.mark.parametrize("offset", ["17864763640654961049600", "-1", "x"])
def test_a_huge_negative_or_text_offset_is_400(api, path, offset):
    response = api.client.get(path, {"offset": offset})
    assert response.status_code == 400 and response.json()["error"]["type"] == "ValidationError"


def _record_events(monkeypatch, stamps: list[dt.datetime]) -> list[str]:
    """One event per stamp (several share a stamp); their ids newest first, the order the API promises."""
    for stamp in stamps:
        monkeypatch.setattr(event_services.timezone, "now", lambda stamp=stamp: stamp)
        with transaction.atomic():
            event_services.event_record(kind=sdwan_kinds.NETWORK_CREATED)
    monkeypatch.undo()
    return [str(pk) for pk in Event.objects.order_by("-occurred_at", "-id").values_list("id", flat=True)]


def test_the_cap_is_honoured(api, monkeypatch):
    base = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    _record_events(monkeypatch, [base + dt.timedelta(seconds=i) for i in range(MAX_LIMIT + 3)])
    page = api.client.get("/api/v1/events/", {"limit": MAX_LIMIT}).json()
    assert len(page["results"]) == MAX_LIMIT and page["next"]
    templates = api.client.get("/api/v1/templates/", {"limit": MAX_LIMIT})
    assert templates.status_code == 200


def test_event_cursor_pages_walk_every_row_once_newest_first(api, monkeypatch):
    base = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    # 23 rows on 4 timestamps: pages of 5 cut through runs of equal timestamps
    stamps = [base + dt.timedelta(seconds=i % 4) for i in range(23)]
    expected = _record_events(monkeypatch, stamps)

    first = api.client.get("/api/v1/events/", {"limit": 5})
    assert first.status_code == 200
    body = first.json()
    assert set(body) == {"next", "previous", "results"} and body["previous"] is None
    seen, pages = [], []
    while True:
        pages.append(body)
        seen += [e["id"] for e in body["results"]]
        if not body["next"]:
            break
        body = api.client.get(body["next"]).json()
    assert seen == expected  # every row once, newest first (id breaks timestamp ties)
    assert [len(p["results"]) for p in pages] == [5, 5, 5, 5, 3]

    # and back again through the previous links
    back = []
    while body["previous"]:
        body = api.client.get(body["previous"]).json()
        back = [e["id"] for e in body["results"]] + back
    assert back == expected[:20] and body["previous"] is None


def test_a_forged_cursor_is_400(api):
    response = api.client.get("/api/v1/events/", {"cursor": "bm90LWEtY3Vyc29y"})
    assert response.status_code == 400 and response.json()["error"]["type"] == "ValidationError"
