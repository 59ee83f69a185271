"""The hub sync's watch (DESIGN §4b: the heartbeat's semantics): a held sync is answered when the hub's desired
state changes, or at ``wait_s`` with the same version; a stale version is answered at once."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from django.test import AsyncClient

from apps.sdwan.services import access_grant_create, access_grant_revoke
from powernode import watch
from tests.agents import HUB_SYNC, HUB_VERSION, HubClient
from tests.factories import HubTokenFactory
from tests.handshake.test_watch import in_thread, run_async, until_waiting

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def hub_token() -> str:
    return HubTokenFactory(name="hub-watch").hub_token


async def held_sync(token: str, body: dict[str, Any]) -> tuple[int, dict, float]:
    started = time.monotonic()
    response = await AsyncClient().post(
        HUB_SYNC, body, content_type="application/json", headers={"Authorization": f"Bearer {token}"}
    )
    return response.status_code, response.json(), time.monotonic() - started


def test_a_stale_version_is_answered_at_once_and_a_current_one_is_held_to_wait_s(fleet, hub_token):
    hub = HubClient(hub_token)
    current = hub.ok()["desired_version"]
    assert hub.ok(desired_version="stale", wait_s=30)["desired_version"] == current  # at once
    started = time.monotonic()
    assert hub.ok(desired_version=current, wait_s=1)["desired_version"] == current
    assert time.monotonic() - started >= 0.9  # held to wait_s, not answered at once
    assert watch.waiter_count() == 0


def test_a_grant_made_while_the_hub_waits_answers_it_with_the_new_peer(fleet, hub_token, admin_actor):
    hub = HubClient(hub_token)
    current = hub.ok()["desired_version"]
    network_id = fleet["network"]["id"]
    body = {"hub_version": HUB_VERSION, "desired_version": current, "wait_s": 20}
    made: dict[str, Any] = {}

    def grant() -> None:
        made["grant"] = access_grant_create(network_id=network_id, device_name_hint="late-laptop", actor=admin_actor)

    async def scenario() -> tuple[int, dict, float]:
        held = asyncio.create_task(held_sync(hub_token, body))
        await until_waiting()
        thread = in_thread(grant)
        result = await held
        thread.join()
        return result

    status, answer, elapsed = run_async(scenario())
    assert status == 200
    assert answer["desired_version"] != current
    network = next(n for n in answer["networks"] if n["network_id"] == network_id)
    assert made["grant"].grant.peer.public_key in [p["public_key"] for p in network["peers"]]
    assert elapsed < 10  # answered at the commit, not at wait_s (20 s)
    assert watch.waiter_count() == 0


def test_a_revocation_while_the_hub_waits_answers_it_without_the_device(fleet, hub_token, admin_actor):
    hub = HubClient(hub_token)
    network_id = fleet["network"]["id"]
    grant = access_grant_create(network_id=network_id, device_name_hint="soon-gone", actor=admin_actor).grant
    current = hub.ok()["desired_version"]
    body = {"hub_version": HUB_VERSION, "desired_version": current, "wait_s": 20}

    async def scenario() -> tuple[int, dict, float]:
        held = asyncio.create_task(held_sync(hub_token, body))
        await until_waiting()
        thread = in_thread(lambda: access_grant_revoke(grant_id=str(grant.id), actor=admin_actor))
        result = await held
        thread.join()
        return result

    status, answer, elapsed = run_async(scenario())
    assert status == 200 and answer["desired_version"] != current
    network = next(n for n in answer["networks"] if n["network_id"] == network_id)
    assert grant.peer.public_key not in [p["public_key"] for p in network["peers"]]
    assert elapsed < 10


def test_the_held_sync_refuses_what_the_plain_one_refuses(fleet, hub_token):
    for body in ({"hub_version": HUB_VERSION, "wait_s": 56}, {"hub_version": HUB_VERSION, "desired_version": 5}):
        code, answer = HubClient(hub_token).sync(body)
        assert code == 400 and answer["error"]["type"] == "ValidationError"
    code, answer = HubClient("pna_000000000000_x").sync({"hub_version": HUB_VERSION, "wait_s": 5})
    assert code == 401
