"""The watch across processes on PostgreSQL: a change committed by another process wakes a heartbeat held
here (through NOTIFY and this process's LISTEN connection); a rolled-back one wakes nobody; a LISTEN
connection killed with pg_terminate_backend is opened again and its waiters are answered at once."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection

from powernode import watch
from tests.agents import AgentClient
from tests.factories import ModuleFactory
from tests.handshake.test_watch import held_heartbeat, run_async, until_waiting
from tests.needs import need_postgres

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
BASE_DIR = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _postgres_only() -> None:
    need_postgres()


def in_another_process(code: str) -> asyncio.Task:
    """Run Django code in a subprocess on the tests' database (committed there, not in this process)."""
    s = connection.settings_dict
    url = f"postgres://{quote(s['USER'])}:{quote(s['PASSWORD'])}@{s['HOST']}:{s['PORT']}/{s['NAME']}"
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "tests.settings"}

    async def run() -> None:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "manage.py", "shell", "--no-imports", "-c", code, cwd=BASE_DIR, env=env,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()

    return asyncio.create_task(run())


ASSIGN = """
from django.db import transaction
from apps.modules.services import module_assign_to_template
from powernode.actors import Actor
with transaction.atomic():
    module_assign_to_template(template_id="{template}", module_id="{module}", actor=Actor.system())
    if {rollback}:
        transaction.set_rollback(True)
"""


def watch_body(version: str, wait_s: int) -> dict:
    return {"agent_version": "0.1.0", "desired_version": version, "wait_s": wait_s}


def test_a_commit_in_another_process_wakes_the_held_heartbeat(fleet):
    module, template = ModuleFactory(), fleet["template"]["id"]
    token = fleet["agent_token"]
    current = AgentClient(token).heartbeat_ok()["desired_version"]

    async def scenario() -> tuple[int, dict, float, float]:
        held = asyncio.create_task(held_heartbeat(token, watch_body(current, 30)))
        await until_waiting()
        await in_another_process(ASSIGN.format(template=template, module=module.id, rollback=False))
        committed = time.monotonic()
        status, answer, _ = await held
        return status, answer, time.monotonic() - committed, watch.listener().connections

    status, answer, after_commit, listens = run_async(scenario())
    assert status == 200 and answer["desired_version"] != current
    assert [a["name"] for a in answer["assignments"]] == [module.name]
    assert after_commit < 1.0  # within a second of the commit (the subprocess's exit comes after it)
    assert listens == 1


def test_a_rollback_in_another_process_wakes_nobody(fleet):
    module, template = ModuleFactory(), fleet["template"]["id"]
    token = fleet["agent_token"]
    current = AgentClient(token).heartbeat_ok()["desired_version"]

    async def scenario() -> tuple[int, dict, float]:
        held = asyncio.create_task(held_heartbeat(token, watch_body(current, 4)))
        await until_waiting()
        await in_another_process(ASSIGN.format(template=template, module=module.id, rollback=True))
        return await held

    status, answer, elapsed = run_async(scenario())
    assert status == 200 and answer["desired_version"] == current
    assert elapsed >= 3.9  # held until wait_s: nothing woke it


def test_a_held_heartbeat_times_out_at_wait_s_with_the_same_version(fleet):
    token = fleet["agent_token"]
    current = AgentClient(token).heartbeat_ok()["desired_version"]
    status, answer, elapsed = run_async(held_heartbeat(token, watch_body(current, 2)))
    assert status == 200 and answer["desired_version"] == current
    assert 1.9 <= elapsed < 4


def test_a_killed_listen_connection_comes_back_and_misses_nothing(fleet):
    module, template = ModuleFactory(), fleet["template"]["id"]
    token = fleet["agent_token"]
    current = AgentClient(token).heartbeat_ok()["desired_version"]

    def terminate(pid: int) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])

    async def scenario() -> dict:
        held = asyncio.create_task(held_heartbeat(token, watch_body(current, 30)))
        await until_waiting()
        listener = watch.listener()
        killed = time.monotonic()
        await asyncio.get_running_loop().run_in_executor(None, terminate, listener.backend_pid)
        # a change committed while nobody listens in this process
        changed = in_another_process(ASSIGN.format(template=template, module=module.id, rollback=False))
        status, answer, _ = await held
        answered_after = time.monotonic() - killed
        await changed
        deadline = time.monotonic() + 10
        while listener.connections < 2:  # opened again, with backoff
            assert time.monotonic() < deadline, "the LISTEN connection was not re-established"
            await asyncio.sleep(0.05)
        # the agent comes back with the version it had: the change it may have missed is answered at once
        again = await held_heartbeat(token, watch_body(answer["desired_version"], 30))
        return {"status": status, "answered_after": answered_after, "again": again}

    result = run_async(scenario())
    assert result["status"] == 200
    assert result["answered_after"] < 2  # answered at once, not at wait_s
    status, answer, elapsed = result["again"]
    assert status == 200 and answer["desired_version"] != current
    assert [a["name"] for a in answer["assignments"]] == [module.name]
    assert elapsed < 2


def test_notify_payloads_stay_under_postgresql_limit():
    topics = {watch.instance_topic(f"{i:032x}") for i in range(600)}
    chunks = watch.payloads(topics)
    assert len(chunks) > 1 and all(len(c.encode()) < 8000 for c in chunks)
    assert set(" ".join(chunks).split()) == topics
    assert watch.payloads({watch.instance_topic(f"{i:032x}") for i in range(10_000)}) == [watch.ALL]
    with connection.cursor() as cursor:  # PostgreSQL takes the largest chunk
        cursor.execute("SELECT pg_notify(%s, %s)", [watch.CHANNEL, max(chunks, key=len)])
