"""Day-2 docker_* actions without a daemon (issue 14): refusals before any engine call, permissions,
404s, what reaches the engine, registry passwords that never come back, and system_delete_instance.

The recording engine of test_docker_ids stands in for the adapter; the real daemon is in tests/lab.
"""

from __future__ import annotations

import json

import pytest

from apps.docker_hosts.actions.operations import REFUSED_OPTIONS
from apps.docker_hosts.models import DockerHost, RegistryCredential
from apps.docker_hosts.services import operations
from apps.events.models import Event
from apps.pki.models import IssuedCertificate
from apps.sdwan.models import SdwanPeer
from powernode.errors import DockerDaemonError
from tests.docker_ops.test_docker_ids import HEX64, _refused
from tests.docker_ops.test_docker_ids import engine as engine  # noqa: F401, PLC0414 - the fixture
from tests.docker_ops.test_docker_ids import host_id as host_id  # noqa: F401, PLC0414 - the fixture
from tests.handshake.conftest import assert_error

UNKNOWN_HOST = "host-00000000-0000-7000-8000-000000000000"
IMAGE = "registry.lab:5000/hello:1"
PASSWORD = "correct horse battery staple 7f3a"


def _day2(host: str) -> dict[str, dict]:
    return {
        "docker_list_images": {"host_id": host},
        "docker_inspect_container": {"host_id": host, "container_id": "hello"},
        "docker_container_logs": {"host_id": host, "container_id": "hello"},
        "docker_start_container": {"host_id": host, "container_id": "hello"},
        "docker_stop_container": {"host_id": host, "container_id": "hello", "timeout_s": 3},
        "docker_restart_container": {"host_id": host, "container_id": "hello"},
    }


@pytest.mark.parametrize("option", sorted(REFUSED_OPTIONS))
def test_dangerous_create_options_are_400_saying_why(api, engine, host_id, option):  # noqa: F811
    value = {"privileged": True, "binds": ["/:/host"], "network_mode": "host", "cap_add": ["SYS_ADMIN"],
             "devices": ["/dev/sda"], "pid_mode": "host", "ipc_mode": "host"}.get(option, "host")
    before = Event.objects.count()
    status, body = api.call("docker_create_container", {"host_id": host_id, "image": IMAGE, option: value})
    error = assert_error(status, body, 400, "ValidationError")
    assert error["details"]["fields"] == {option: f"refused: {REFUSED_OPTIONS[option]}"}
    assert option in error["message"] and "refused" in error["message"]
    assert engine.calls == [] and Event.objects.count() == before


@pytest.mark.parametrize(
    "extra",
    [
        {"restart_policy": "sometimes"},
        {"volumes": [{"name": "/etc", "container_path": "/data"}]},
        {"volumes": [{"name": "data", "container_path": "data"}]},
        {"volumes": [{"name": "data", "container_path": "/data/../../etc"}]},
        {"volumes": [{"name": "data", "container_path": "/data", "source": "/etc"}]},
        {"volumes": [{"name": "data", "container_path": "/x:/y"}]},
        {"labels": {"k": 1}},
        {"labels": {"bad key": "v"}},
    ],
)
def test_bad_create_options_are_400(api, engine, host_id, extra):  # noqa: F811
    _refused(api, "docker_create_container", {"host_id": host_id, "image": IMAGE, **extra}, engine)


def test_create_options_reach_the_engine_and_the_event(api, engine, host_id):  # noqa: F811
    volumes = [{"name": "hello-data", "container_path": "/data", "read_only": True}]
    api.ok("docker_create_container", {"host_id": host_id, "image": IMAGE, "name": "hello",
                                       "restart_policy": "unless-stopped", "labels": {"team": "web"},
                                       "volumes": volumes})
    [(method, _args, kwargs)] = engine.calls
    assert method == "create_container"
    assert (kwargs["restart_policy"], kwargs["labels"], kwargs["volumes"]) == ("unless-stopped", {"team": "web"},
                                                                               volumes)
    data = Event.objects.get(kind="system.docker.container.created").data
    assert data["restart_policy"] == "unless-stopped" and data["volumes"] == ["hello-data"]


@pytest.mark.parametrize(
    "payload",
    [
        {"tail": 0},
        {"tail": 5001},
        {"tail": "10"},
        {"since": -1},
        {"since": "yesterday"},
        {"timestamps": "yes"},
        {"container_id": "../volumes/data"},
        {"container_id": "a b"},
    ],
)
def test_bad_log_inputs_are_400(api, engine, host_id, payload):  # noqa: F811
    _refused(api, "docker_container_logs", {"host_id": host_id, "container_id": "hello", **payload}, engine)


@pytest.mark.parametrize("name", ["docker_stop_container", "docker_restart_container"])
@pytest.mark.parametrize("timeout_s", [-1, 121, "5"])
def test_timeout_out_of_range_is_400(api, engine, host_id, name, timeout_s):  # noqa: F811
    _refused(api, name, {"host_id": host_id, "container_id": "hello", "timeout_s": timeout_s}, engine)


@pytest.mark.parametrize("name", [n for n, p in _day2("x").items() if "container_id" in p])
@pytest.mark.parametrize("container_id", ["../x", "/containers/x", ".."])
def test_path_tricks_as_container_ids_are_400(api, engine, host_id, name, container_id):  # noqa: F811
    _refused(api, name, {**_day2(host_id)[name], "container_id": container_id}, engine)


@pytest.mark.parametrize("name", list(_day2("x")))
def test_unknown_host_is_404(api, db, name):
    status, body = api.call(name, _day2(UNKNOWN_HOST)[name])
    assert_error(status, body, 404, "NotFound")


def test_logs_defaults_reach_the_engine(api, engine, host_id):  # noqa: F811
    api.ok("docker_container_logs", {"host_id": host_id, "container_id": "hello"})
    api.ok("docker_container_logs", {"host_id": host_id, "container_id": "hello", "tail": 5000,
                                     "since": "2026-12-02T15:00:00Z", "timestamps": True})
    api.ok("docker_container_logs", {"host_id": host_id, "container_id": "hello", "since": 1764687600})
    first, second, third = (c[2] for c in engine.calls)
    assert first == {"container_id": "hello", "tail": 200, "since": None, "timestamps": False}
    assert second["tail"] == 5000 and second["timestamps"] is True
    assert second["since"].isoformat() == "2026-12-02T15:00:00+00:00"
    assert third["since"] == 1764687600


@pytest.mark.parametrize(
    "name, method, event",
    [
        ("docker_start_container", "start_container", "system.docker.container.started"),
        ("docker_stop_container", "stop_container", "system.docker.container.stopped"),
        ("docker_restart_container", "restart_container", "system.docker.container.restarted"),
    ],
)
def test_lifecycle_calls_the_engine_and_records_an_event(api, engine, host_id, name, method, event):  # noqa: F811
    answer = api.ok(name, _day2(host_id)[name])
    assert answer == {"container": {"id": HEX64, "name": "hello", "status": "running"}}
    assert engine.calls[0][0] == method
    recorded = Event.objects.get(kind=event)
    assert recorded.host_id == host_id and recorded.data["container_id"] == HEX64


def test_viewers_inspect_and_list_images_but_cannot_operate(api_as, engine, host_id):  # noqa: F811
    viewer = api_as("viewer", perms=["docker_view"])
    viewer.ok("docker_list_images", {"host_id": host_id})
    viewer.ok("docker_inspect_container", {"host_id": host_id, "container_id": "hello"})
    for name in ("docker_container_logs", "docker_start_container", "docker_stop_container",
                 "docker_restart_container"):
        status, body = viewer.call(name, _day2(host_id)[name])
        error = assert_error(status, body, 403, "PermissionDenied")
        assert error["details"]["permission"] == "system.docker_operate"
    assert [c[0] for c in engine.calls] == ["list_images", "inspect_container"]


def test_operators_cannot_set_registry_credentials(api_as, db):
    operator = api_as("operator", perms=["docker_view", "docker_operate"])
    status, body = operator.call("docker_set_registry_credentials",
                                 {"registry": "registry.lab:5000", "username": "u", "password": PASSWORD})
    error = assert_error(status, body, 403, "PermissionDenied")
    assert error["details"]["permission"] == "system.docker_provision"
    assert not RegistryCredential.objects.exists()


@pytest.mark.parametrize(
    "payload",
    [
        {"registry": "registry.lab:5000/../x", "username": "u", "password": "p"},
        {"registry": "registry.lab:5000", "username": "u:v", "password": "p"},
        {"registry": "registry.lab:5000", "username": "u", "password": ""},
        {"registry": "registry.lab:5000", "username": "u"},
    ],
)
def test_bad_registry_credentials_are_400(api, db, payload):
    status, body = api.call("docker_set_registry_credentials", payload)
    assert_error(status, body, 400, "ValidationError")
    assert not RegistryCredential.objects.exists()


def test_registry_password_is_stored_encrypted_used_for_pulls_and_never_shown(api, engine, host_id):  # noqa: F811
    answers = [
        api.ok("docker_set_registry_credentials",
               {"registry": "Registry.LAB:5000", "username": "puller", "password": "first-" + PASSWORD}),
        api.ok("docker_set_registry_credentials",
               {"registry": "registry.lab:5000", "username": "puller", "password": PASSWORD}),
    ]
    assert answers[1] == {"registry": {"registry": "registry.lab:5000", "username": "puller"}}
    row = RegistryCredential.objects.get()  # the second call replaced the first
    assert PASSWORD not in row.password_encrypted and "first-" not in row.password_encrypted

    api.ok("docker_pull_image", {"host_id": host_id, "image": IMAGE})
    api.ok("docker_pull_image", {"host_id": host_id, "image": "other.lab:5000/hello:1"})
    assert engine.calls == [
        ("pull_image", (IMAGE,), {"auth": {"username": "puller", "password": PASSWORD}}),
        ("pull_image", ("other.lab:5000/hello:1",), {"auth": None}),
    ]
    answers.append(api.ok("recent_events", {"limit": 500}))
    everything = json.dumps(answers) + json.dumps(list(Event.objects.values_list("data", flat=True)))
    assert PASSWORD not in everything and "first-" not in everything
    kinds = [e.kind for e in Event.objects.filter(kind__startswith="system.docker.registry")]
    assert kinds == ["system.docker.registry.credentials_set"] * 2
    pulls = Event.objects.filter(kind="system.docker.image.pulled")
    pulled = sorted(str(e.data.get("registry_username")) for e in pulls)
    assert pulled == ["None", "puller"]


def test_system_delete_instance_ends_its_host_revokes_certs_and_detaches_peers(api, docker_fleet, agent):
    agent.walk_to_ready()
    host = DockerHost.objects.get()
    instance_id = docker_fleet["instance"]["id"]
    assert SdwanPeer.objects.filter(node_instance_id=instance_id).exists()

    answer = api.ok("system_delete_instance", {"id": instance_id})["deleted"]
    assert answer["id"] == instance_id and answer["status"] == "deleted"
    assert [p["network_id"] for p in answer["peers_detached"]] == [docker_fleet["network"]["id"]]

    host.refresh_from_db()
    assert host.status == DockerHost.Status.DECOMMISSIONED
    assert not IssuedCertificate.objects.filter(host_id=host.id, revoked_at__isnull=True).exists()
    assert not SdwanPeer.objects.filter(node_instance_id=instance_id).exists()
    kinds = list(Event.objects.filter(instance_id=instance_id).order_by("occurred_at", "id")
                 .values_list("kind", flat=True))
    assert kinds[-4:] == ["system.instance.deleted", "system.docker.decommission.requested",
                          "system.docker.decommissioned", "system.sdwan.peer.detached"]
    # the agent's token stopped working; deleting again is a 404
    status, _ = agent.heartbeat()
    assert status == 401
    status, body = api.call("system_delete_instance", {"id": instance_id})
    assert_error(status, body, 404, "NotFound")


def test_system_delete_instance_needs_instance_manage(api_as, docker_fleet):
    status, body = api_as("viewer", perms=["instance_view"]).call(
        "system_delete_instance", {"id": docker_fleet["instance"]["id"]}
    )
    assert_error(status, body, 403, "PermissionDenied")



class _RegistryRefuses:
    """dockerd's answer when the registry refused the pull's login (what the lab's private registry gives)."""

    def pull_image(self, image: str, *, auth: dict | None = None) -> dict:
        raise DockerDaemonError(
            f'the Docker daemon at tcp://[fd00::2]:2376 refused: Head "https://{image}": no basic auth credentials',
            details={"endpoint": "tcp://[fd00::2]:2376", "daemon_status": 500},
        )


@pytest.mark.parametrize("stored", [False, True])
def test_a_pull_refused_for_want_of_a_login_says_how_to_give_one(api, host_id, monkeypatch, stored):  # noqa: F811
    monkeypatch.setattr(operations, "_engine", lambda host: _RegistryRefuses())
    if stored:
        login = {"registry": "registry.lab:5000", "username": "u", "password": PASSWORD}
        api.ok("docker_set_registry_credentials", login)
    status, body = api.call("docker_pull_image", {"host_id": host_id, "image": IMAGE})
    error = assert_error(status, body, 502, "DockerDaemonError")
    assert "docker_set_registry_credentials" in error["message"]
    assert ("was refused" in error["message"]) is stored
    assert error["details"] == {"endpoint": "tcp://[fd00::2]:2376", "daemon_status": 500,
                                "registry": "registry.lab:5000", "login_sent": stored}
    assert PASSWORD not in json.dumps(body)
    assert not Event.objects.filter(kind="system.docker.image.pulled").exists()
