"""The watch (DESIGN §4): desired_version, held heartbeats and what wakes them.

In-process (SQLite and PostgreSQL): the version moves exactly with the desired state, bad watch input is a
400 that records nothing, a held heartbeat is answered when an assignment commits in another thread. The
PostgreSQL part (tests/handshake/test_watch_postgres.py) wakes a waiter from another process.
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.db import connection, connections, transaction
from django.test import AsyncClient

from apps.modules.services import module_assign_to_template, module_unassign_from_template
from apps.nodes.models import NodeInstance
from apps.sdwan.models import SdwanNetwork
from powernode import watch
from tests.agents import HEARTBEAT
from tests.handshake.conftest import state_counts

pytestmark = pytest.mark.django_db(transaction=True)


def version(agent) -> str:
    return agent.heartbeat_ok()["desired_version"]


@pytest.mark.parametrize(
    "fields",
    [
        {"wait_s": 56},
        {"wait_s": -1},
        {"wait_s": "5"},
        {"wait_s": 1.5},
        {"wait_s": True},
        {"desired_version": 5},
        {"desired_version": ["a"]},
        {"desired_version": "v" * 129},
    ],
)
def test_bad_watch_input_is_a_400_that_records_nothing(docker_fleet, agent, fields):
    before = state_counts()
    status, body = agent.heartbeat(**fields)
    assert status == 400, body
    assert body["error"]["type"] == "ValidationError"
    assert set(body["error"]["details"]["fields"]) == set(fields)
    assert state_counts() == before
    assert NodeInstance.objects.get().last_heartbeat_at is None


def test_desired_version_is_stable_and_moves_with_every_input(api, docker_fleet, agent, catalog):
    v0 = version(agent)
    assert isinstance(v0, str) and 0 < len(v0) <= 128
    assert version(agent) == v0  # nothing changed
    agent.heartbeat_ok(runtimes={"docker": {"phase": "installing"}})  # a report is not desired state
    assert version(agent) == v0

    # assignment and unassignment (template-level)
    template_id, module_id = docker_fleet["template"]["id"], str(catalog["docker-engine"].id)
    api.ok("system_unassign_module_from_template", {"template_id": template_id, "module_id": module_id})
    v1 = version(agent)
    assert v1 != v0
    api.ok("system_assign_module_to_template", {"template_id": template_id, "module_id": module_id})
    v2 = version(agent)
    assert v2 != v1
    assert v2 == v0  # the same desired state again: a version names the state, not its history

    # attach to a second network
    network = api.ok("system_sdwan_create_network", {"name": "net-b", "prefix": "fd00:abcd:2::/64"})["network"]
    instance_id = docker_fleet["instance"]["id"]
    api.ok("system_sdwan_attach_peer", {"network_id": network["id"], "node_instance_id": instance_id})
    v3 = version(agent)
    assert v3 != v2

    # the hub's key of a network changes (the hub reports its own key: a network-level change)
    SdwanNetwork.objects.filter(pk=network["id"]).update(hub_public_key="A" * 43 + "=")
    v4 = version(agent)
    assert v4 != v3

    # a decommission order
    from tests.csr import make_csr

    agent.ok("installing")
    host_id = agent.ok("wants_cert", csr_pem=make_csr())["host_id"]
    v5 = version(agent)
    assert v5 != v4  # the provision order now names the host
    api.ok("system_decommission_docker_runtime", {"host_id": host_id})
    answer = agent.heartbeat_ok()
    assert answer["runtime_orders"][0]["action"] == "decommission"
    assert answer["desired_version"] != v5
    assert version(agent) == answer["desired_version"]


def test_stale_version_or_no_wait_answers_at_once(docker_fleet, agent):
    current = version(agent)
    started = time.monotonic()
    assert agent.heartbeat_ok(desired_version="stale", wait_s=30)["desired_version"] == current
    assert agent.heartbeat_ok(desired_version=current, wait_s=0)["desired_version"] == current
    assert agent.heartbeat_ok(desired_version=current)["desired_version"] == current
    assert time.monotonic() - started < 5


def test_a_held_heartbeat_times_out_with_the_same_version(docker_fleet, agent):
    current = version(agent)
    started = time.monotonic()
    answer = agent.heartbeat_ok(desired_version=current, wait_s=1)
    assert answer["desired_version"] == current
    assert 0.9 <= time.monotonic() - started < 5
    assert watch.waiter_count() == 0


def run_async(coro):  # noqa: ANN001, ANN201
    """``asyncio.run`` whose worker threads (the async view's database calls) close their connections at
    the end, as a server's would at exit: the test database can then be dropped."""
    workers = 4

    async def main():  # noqa: ANN202
        loop = asyncio.get_running_loop()
        loop.set_default_executor(ThreadPoolExecutor(max_workers=workers))
        try:
            return await coro
        finally:
            await watch.stop_listening()
            barrier = threading.Barrier(workers)

            def close() -> None:
                barrier.wait(timeout=10)  # one call per worker thread
                connections.close_all()

            await asyncio.gather(*[loop.run_in_executor(None, close) for _ in range(workers)])

    return asyncio.run(main())


async def held_heartbeat(token: str, body: dict[str, Any]) -> tuple[int, dict, float]:
    started = time.monotonic()
    response = await AsyncClient().post(
        HEARTBEAT, body, content_type="application/json", headers={"Authorization": f"Bearer {token}"}
    )
    return response.status_code, response.json(), time.monotonic() - started


async def until_waiting(count: int = 1, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while watch.waiter_count() < count:
        assert time.monotonic() < deadline, "the heartbeat was never held"
        await asyncio.sleep(0.01)


def in_thread(fn) -> threading.Thread:  # noqa: ANN001
    def run() -> None:
        try:
            fn()
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_an_assignment_wakes_a_held_heartbeat_in_process(docker_fleet, agent, catalog, admin_actor):
    template_id, module_id = docker_fleet["template"]["id"], str(catalog["docker-engine"].id)
    module_unassign_from_template(template_id=template_id, module_id=module_id, actor=admin_actor)
    current = version(agent)
    body = {"agent_version": "0.1.0", "desired_version": current, "wait_s": 20}

    async def scenario() -> tuple[int, dict, float]:
        held = asyncio.create_task(held_heartbeat(docker_fleet["agent_token"], body))
        await until_waiting()
        thread = in_thread(
            lambda: module_assign_to_template(template_id=template_id, module_id=module_id, actor=admin_actor)
        )
        result = await held
        thread.join()
        return result

    status, answer, elapsed = run_async(scenario())
    assert status == 200
    assert answer["desired_version"] != current
    assert [a["name"] for a in answer["assignments"]] == ["docker-engine"]
    assert elapsed < 5  # answered at the commit, not at wait_s
    assert watch.waiter_count() == 0


def test_a_rolled_back_change_wakes_nobody(docker_fleet, agent, catalog, admin_actor):
    template_id, module_id = docker_fleet["template"]["id"], str(catalog["docker-engine"].id)
    current = version(agent)
    body = {"agent_version": "0.1.0", "desired_version": current, "wait_s": 2}

    def unassign_then_roll_back() -> None:
        with transaction.atomic():
            module_unassign_from_template(template_id=template_id, module_id=module_id, actor=admin_actor)
            transaction.set_rollback(True)

    async def scenario() -> tuple[int, dict, float]:
        held = asyncio.create_task(held_heartbeat(docker_fleet["agent_token"], body))
        await until_waiting()
        thread = in_thread(unassign_then_roll_back)
        result = await held
        thread.join()
        return result

    status, answer, elapsed = run_async(scenario())
    assert status == 200 and answer["desired_version"] == current
    assert elapsed >= 1.9  # held to wait_s


def test_a_change_to_one_template_wakes_only_its_instances(admin_actor):
    """Two templates, two instances each, all waiting: assigning to one wakes exactly its two."""
    from tests.factories import ModuleFactory, NodeInstanceFactory, NodeTemplateFactory

    templates = [NodeTemplateFactory(), NodeTemplateFactory()]
    agents = [(t, NodeInstanceFactory(node_template=t)) for t in templates for _ in range(2)]
    module = ModuleFactory()  # live, no runtime: no precondition
    from tests.agents import AgentClient

    versions = [AgentClient(i.agent_token).heartbeat_ok()["desired_version"] for _, i in agents]

    async def scenario() -> list[tuple[int, dict, float]]:
        tasks = [
            asyncio.create_task(
                held_heartbeat(i.agent_token, {"agent_version": "0.1.0", "desired_version": v, "wait_s": 3})
            )
            for (_, i), v in zip(agents, versions, strict=True)
        ]
        await until_waiting(len(tasks))
        thread = in_thread(
            lambda: module_assign_to_template(
                template_id=str(templates[0].id), module_id=str(module.id), actor=admin_actor
            )
        )
        results = await asyncio.gather(*tasks)
        thread.join()
        return results

    results = run_async(scenario())
    woken = [
        elapsed < 2.5 and answer["desired_version"] != v
        for (_, answer, elapsed), v in zip(results, versions, strict=True)
    ]
    assert woken == [True, True, False, False]
