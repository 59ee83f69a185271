"""The runtime seam (powernode.runtimes): a second runtime plugs in without touching another app.

A stand-in k3s runtime (the catalog's k3s modules) registers a RuntimeProvider and is walked through
assignment (its precondition refusing, then allowing), the heartbeat (its part of the one SQL read, its
orders in the answer, its phases in ``runtimes.k3s.phase``), the instance's output and status, and the
instance's deletion. Docker keeps working beside it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.events.models import Event
from apps.modules.models import Module, ModuleAssignment
from apps.nodes.models import NodeInstance
from apps.nodes.services import instance_delete
from powernode import runtimes
from powernode.actors import Actor
from powernode.errors import ConflictError
from powernode.runtimes import RuntimeProvider
from tests.agents import HEARTBEAT, AgentClient


class K3sRuntime(RuntimeProvider):
    """A k3s runtime for tests: joins a node once k3s is assigned; refuses assignment until told not to."""

    name = Module.Runtime.K3S.value
    label = "k3s (test stand-in)"
    event_prefix = "system.k3s"
    phases = ("none", "joining", "joined")

    def __init__(self) -> None:
        self.ready_templates: set[str] = set()
        self.checked: list[str] = []
        self.ended: list[str] = []

    def heartbeat_sql(self) -> str:
        # its own part of the heartbeat's one read: the instance's name, as the node name to join with
        table = NodeInstance._meta.db_table
        return f"SELECT '{self.name}', NULL, name, NULL, NULL, NULL, NULL, NULL, NULL FROM {table} WHERE id = %s"

    def heartbeat_orders(self, *, rows: list[tuple[Any, ...]], assigned_at: datetime | None) -> list[dict[str, Any]]:
        if assigned_at is None:
            return []
        return [{"runtime": self.name, "action": "join", "node_name": rows[0][0]}]

    def check_assignment(self, *, template_id: Any, template_name: str) -> None:
        self.checked.append(str(template_id))
        if str(template_id) not in self.ready_templates:
            raise ConflictError(
                f"Template {template_name} has no k3s server yet.", details={"template_id": str(template_id)}
            )

    def end_for_instance(self, *, instance: Any, actor: Actor) -> None:
        self.ended.append(str(instance.id))

    instance_field_names = ("k3s_node_name",)

    def instance_fields(self, instance: Any) -> dict[str, Any]:
        return {"k3s_node_name": instance.name}

    def status(self) -> dict[str, Any]:
        return {"k3s_nodes": {"joined": 0}}


@pytest.fixture
def k3s() -> Iterator[K3sRuntime]:
    provider = runtimes.register(K3sRuntime())
    try:
        yield provider
    finally:
        runtimes.unregister(provider.name)


@pytest.fixture
def k3s_module(catalog) -> Module:
    module = catalog["k3s-agent"]
    Module.objects.filter(pk=module.pk).update(lifecycle_state=Module.Lifecycle.LIVE)
    module.refresh_from_db()
    return module


def _assign(api, fleet, module: Module) -> tuple[int, dict]:  # noqa: ANN001
    return api.call(
        "system_assign_module_to_template", {"template_id": fleet["template"]["id"], "module_id": str(module.id)}
    )


def test_the_docker_runtime_is_registered_by_its_app() -> None:
    docker = runtimes.get("docker")
    assert docker is not None and docker.label == "Docker Engine"
    assert "wants_cert" in docker.phases and "none" in docker.phases


def test_assignment_asks_the_runtime_and_writes_nothing_when_it_refuses(api, fleet, k3s, k3s_module) -> None:
    before = (ModuleAssignment.objects.count(), Event.objects.count())
    status, body = _assign(api, fleet, k3s_module)
    assert status == 409 and body["error"]["type"] == "ConflictError", body
    assert "no k3s server" in body["error"]["message"]
    assert k3s.checked == [fleet["template"]["id"]]
    assert (ModuleAssignment.objects.count(), Event.objects.count()) == before

    k3s.ready_templates.add(fleet["template"]["id"])
    status, body = _assign(api, fleet, k3s_module)
    assert status == 200, body
    assert ModuleAssignment.objects.filter(module=k3s_module).count() == 1
    assert Event.objects.filter(kind="system.k3s.module.assigned").count() == 1


def test_heartbeat_carries_the_runtimes_orders_and_accepts_its_phases(api, fleet, k3s, k3s_module) -> None:
    agent = AgentClient(fleet["agent_token"])
    status, answer = agent.heartbeat(runtimes={"k3s": {"phase": "none"}})
    assert status == 200, answer
    assert answer["runtime_orders"] == []  # nothing assigned yet

    k3s.ready_templates.add(fleet["template"]["id"])
    assert _assign(api, fleet, k3s_module)[0] == 200
    # still one read for the desired state, with the k3s part in the same UNION ALL
    with CaptureQueriesContext(connection) as queries:
        status, answer = agent.heartbeat(runtimes={"k3s": {"phase": "joining", "version": "v1.31"}})
    assert status == 200, answer
    assert answer["assignments"] == [{"module_id": str(k3s_module.id), "name": "k3s-agent", "runtime": "k3s"}]
    assert answer["runtime_orders"] == [{"runtime": "k3s", "action": "join", "node_name": "node-1"}]
    reads = [q["sql"] for q in queries.captured_queries if "UNION ALL" in q["sql"]]
    assert len(reads) == 1 and "'k3s'" in reads[0] and "'docker'" in reads[0]
    assert NodeInstance.objects.get().runtime_report == {"k3s": {"phase": "joining", "version": "v1.31"}}

    status, body = agent.post(HEARTBEAT, {"agent_version": "0.1.0", "runtimes": {"k3s": {"phase": "wants_cert"}}})
    assert status == 400, body
    assert body["error"]["details"]["fields"] == {"runtimes.k3s.phase": "must be one of none, joining, joined"}


def test_docker_orders_and_k3s_orders_come_side_by_side(api, fleet, k3s, k3s_module) -> None:
    k3s.ready_templates.add(fleet["template"]["id"])
    assert _assign(api, fleet, k3s_module)[0] == 200
    assert _assign(api, fleet, fleet["docker_module"])[0] == 200
    status, answer = AgentClient(fleet["agent_token"]).heartbeat(
        runtimes={"docker": {"phase": "none"}, "k3s": {"phase": "joined"}}
    )
    assert status == 200, answer
    assert answer["runtime_orders"] == [
        {"runtime": "docker", "action": "provision", "host_id": None},
        {"runtime": "k3s", "action": "join", "node_name": "node-1"},
    ]


def test_instance_output_and_status_carry_every_runtimes_part(api, fleet, k3s) -> None:
    instance = api.ok("system_get_instance", {"id": fleet["instance"]["id"]})["instance"]
    assert instance["k3s_node_name"] == "node-1"
    assert instance["docker_host_id"] is None
    status = api.ok("platform_provisioning_status")
    assert status["k3s_nodes"] == {"joined": 0}
    assert "docker_hosts" in status


def test_instance_deletion_ends_the_runtime(fleet, k3s, admin_actor) -> None:
    instance_delete(instance_id=fleet["instance"]["id"], actor=admin_actor)
    assert k3s.ended == [fleet["instance"]["id"]]


def test_unregistered_runtime_is_gone_from_the_heartbeat(fleet) -> None:
    provider = runtimes.register(K3sRuntime())
    runtimes.unregister(provider.name)
    assert runtimes.get("k3s") is None
    status, answer = AgentClient(fleet["agent_token"]).heartbeat(runtimes={"k3s": {"phase": "anything"}})
    assert status == 200 and answer["runtime_orders"] == []  # an unknown runtime's report is not checked
