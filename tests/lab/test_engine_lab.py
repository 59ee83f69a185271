"""The Docker engine adapter against a real dockerd: mutual TLS on an overlay /128, through the hub."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator

import docker
import pytest
import requests

from apps.docker_hosts.adapters.engine import DockerEngine, engine_for, forget_engine
from lab.pki import LabCa
from lab.world import DOCKER_PORT, World
from powernode.errors import DockerDaemonError, NotFound

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("in_platform", "ca_bundle_env")]

INDEX_TEXT = "hello from the powernode lab"


def make_engine(world: World, **overrides: str) -> DockerEngine:
    material = {
        "endpoint": world.docker_endpoint,
        "ca_pem": world.ca.ca_pem,
        "cert_pem": world.platform_client.cert_pem,
        "key_pem": world.platform_client.key_pem,
    }
    material.update(overrides)
    return DockerEngine(**material, connect_timeout=3, read_timeout=60)


@pytest.fixture
def engine(world: World) -> Iterator[DockerEngine]:
    with make_engine(world) as eng:
        yield eng


@pytest.fixture
def image(world: World, engine: DockerEngine) -> Iterator[dict]:
    pulled = engine.pull_image(world.image_ref)
    yield pulled
    for row in engine.list_containers(all=True):
        engine.delete_container(container_id=row["id"], force=True)
    try:
        engine.delete_image(image_id=pulled["id"])
    except NotFound:
        pass


def test_tutorial_flow_pull_create_list_curl_delete(world: World, engine: DockerEngine) -> None:
    assert engine.version()["version"].startswith("20.10")

    pulled = engine.pull_image(world.image_ref)
    assert pulled["id"].startswith("sha256:")
    assert world.image_ref in pulled["repo_tags"]
    assert pulled["size"] > 0

    created = engine.create_container(image=world.image_ref, name="web",
                                      ports=[{"host": 8080, "container": 80, "protocol": "tcp"}])
    assert created["name"] == "web"
    assert created["status"] == "running"

    [row] = [r for r in engine.list_containers() if r["id"] == created["id"]]
    assert row["name"] == "web"
    assert row["image"] == world.image_ref
    assert row["status"].startswith("Up ")
    assert row["ports"] == [{"host": 8080, "container": 80, "protocol": "tcp"}]

    # The operator's workstation on network A reaches the container through the hub...
    from_ws = world.lab.curl("ws", f"http://[{world.node_overlay}]:8080/")
    assert from_ws.returncode == 0, from_ws.stderr
    assert INDEX_TEXT in from_ws.stdout
    # ...a peer on network B does not, although its config claims network A's prefix.
    from_b = world.lab.curl("intr", f"http://[{world.node_overlay}]:8080/", max_time=3)
    assert from_b.returncode != 0
    assert INDEX_TEXT not in from_b.stdout

    engine.delete_container(container_id=created["id"], force=True)
    assert created["id"] not in {r["id"] for r in engine.list_containers(all=True)}
    engine.delete_image(image_id=pulled["id"])
    with pytest.raises(NotFound):
        engine.delete_image(image_id=pulled["id"])


def test_env_and_command_reach_the_container(world: World, engine: DockerEngine, image: dict) -> None:
    check = ["/bin/sh", "-c", 'test "$GREETING" = "hello lab"']
    ok = engine.create_container(image=world.image_ref, env={"GREETING": "hello lab"}, command=check,
                                 detach=False)
    assert (ok["status"], ok["exit_code"]) == ("exited", 0)
    wrong = engine.create_container(image=world.image_ref, env=["GREETING=other"], command=check, detach=False)
    assert (wrong["status"], wrong["exit_code"]) == ("exited", 1)
    listed = {r["id"]: r for r in engine.list_containers(all=True)}
    assert listed[ok["id"]]["status"].startswith("Exited (0)")
    assert ok["id"] not in {r["id"] for r in engine.list_containers()}  # not running: not in `docker ps`


def test_failed_start_leaves_no_container(world: World, engine: DockerEngine, image: dict) -> None:
    engine.create_container(image=world.image_ref, name="first", ports=[{"host": 8081, "container": 80}])
    with pytest.raises(DockerDaemonError) as err:
        engine.create_container(image=world.image_ref, name="second", ports=[{"host": 8081, "container": 80}])
    assert "already allocated" in err.value.message
    assert "second" not in {r["name"] for r in engine.list_containers(all=True)}


def test_unknown_container_and_image_are_not_found(world: World, engine: DockerEngine) -> None:
    with pytest.raises(NotFound) as err:
        engine.delete_container(container_id="no-such-container")
    assert "No such container" in err.value.message
    with pytest.raises(NotFound):
        engine.delete_image(image_id="sha256:" + "0" * 64)
    with pytest.raises(NotFound):
        engine.pull_image(world.image_ref.rsplit(":", 1)[0] + ":no-such-tag")
    with pytest.raises(NotFound):
        engine.create_container(image="never-pulled/image:1")


def test_running_container_needs_force(world: World, engine: DockerEngine, image: dict) -> None:
    created = engine.create_container(image=world.image_ref)
    with pytest.raises(DockerDaemonError) as err:
        engine.delete_container(container_id=created["id"])
    assert err.value.status_code == 502
    assert err.value.details["daemon_status"] == 409
    assert "running container" in err.value.message
    engine.delete_container(container_id=created["id"], force=True)


def test_host_ca_is_used_although_ca_bundle_variables_are_set(world: World, engine: DockerEngine,
                                                               ca_bundle_env: str) -> None:
    assert os.environ["REQUESTS_CA_BUNDLE"] == ca_bundle_env
    assert engine.ping() is True

    # docker-py on its own, given the same CA, lets the variables win and fails to verify the daemon...
    tls = docker.tls.TLSConfig(
        client_cert=(_pem_file(world, "cert.pem", world.platform_client.cert_pem),
                     _pem_file(world, "key.pem", world.platform_client.key_pem)),
        ca_cert=_pem_file(world, "ca.pem", world.ca.ca_pem), verify=True,
    )
    plain = docker.APIClient(base_url=world.docker_endpoint, tls=tls, version="1.41", timeout=10)
    with pytest.raises(requests.exceptions.SSLError):
        plain.ping()
    # ...and works once they are gone: the variables, not the certificates, made the difference.
    os.environ.pop("REQUESTS_CA_BUNDLE")
    os.environ.pop("CURL_CA_BUNDLE")
    assert plain.ping() is True
    plain.close()


def _pem_file(world: World, name: str, text: str) -> str:
    path = world.lab.dir / "plain-client" / name
    path.parent.mkdir(exist_ok=True, mode=0o700)
    path.write_text(text)
    return str(path)


def test_client_cert_from_another_ca_is_refused(world: World) -> None:
    stranger = LabCa("another CA").issue_client("stranger")
    with make_engine(world, cert_pem=stranger.cert_pem, key_pem=stranger.key_pem) as eng:
        with pytest.raises(DockerDaemonError) as err:
            eng.list_containers()
    assert err.value.status_code == 502


def test_daemon_with_a_certificate_from_another_ca_is_not_trusted(world: World) -> None:
    with make_engine(world, ca_pem=LabCa("another CA").ca_pem) as eng:
        with pytest.raises(DockerDaemonError) as err:
            eng.version()
    assert "TLS" in err.value.message


def test_client_without_certificate_is_refused(world: World) -> None:
    url = f"https://[{world.node_overlay}]:{DOCKER_PORT}/version"
    with_cert = world.lab.curl("ws", url, ca_pem=world.ca.ca_pem, cert_pem=world.platform_client.cert_pem,
                               key_pem=world.platform_client.key_pem)
    assert with_cert.returncode == 0, with_cert.stderr
    without = world.lab.curl("ws", url, ca_pem=world.ca.ca_pem)
    assert without.returncode != 0
    assert '"ApiVersion"' not in without.stdout


def test_dockerd_listens_only_on_the_overlay(world: World) -> None:
    listeners = world.lab.hosts["node"].ns.listening_tcp()
    assert [(addr, port) for addr, port, proc in listeners if proc == "dockerd"] == [
        (world.node_overlay, DOCKER_PORT)
    ]
    assert [addr for addr, port, _proc in listeners if port == DOCKER_PORT] == [world.node_overlay]


def test_stopped_daemon_is_a_daemon_error_and_the_engine_recovers(world: World, engine: DockerEngine) -> None:
    assert engine.ping()
    world.node_dockerd.stop()
    try:
        with pytest.raises(DockerDaemonError) as err:
            engine.list_containers()
        assert "cannot reach" in err.value.message
    finally:
        world.node_dockerd.start()
    assert engine.list_containers(all=True) is not None  # same pooled client, new connection


def test_engine_for_reuses_one_client_per_host_and_replaces_it_on_new_keys(world: World) -> None:
    material = {"endpoint": world.docker_endpoint, "ca_pem": world.ca.ca_pem,
                "cert_pem": world.platform_client.cert_pem, "key_pem": world.platform_client.key_pem}
    try:
        first = engine_for("host-lab", **material)
        assert engine_for("host-lab", **material) is first
        first.list_containers()
        tls_dir = first._tls_dir
        assert stat.S_IMODE(os.stat(tls_dir).st_mode) == 0o700
        assert stat.S_IMODE(os.stat(os.path.join(tls_dir, "key.pem")).st_mode) == 0o600

        renewed = world.ca.issue_client("powernode-platform")
        second = engine_for("host-lab", **{**material, "cert_pem": renewed.cert_pem, "key_pem": renewed.key_pem})
        assert second is not first
        assert first.closed and not os.path.exists(tls_dir)
        assert second.list_containers() is not None
    finally:
        forget_engine("host-lab")


# --- day 2 (issue 14) ------------------------------------------------------------------------------------
PRINT_THEN_SLEEP = ["/bin/sh", "-c", "for i in 1 2 3 4 5; do echo line-$i; done; echo oops >&2; sleep 3600"]
# 3000 lines of 1001 bytes (about 2.9 MiB), then exit
PRINT_3_MIB = ["/bin/sh", "-c",
               "awk 'BEGIN { s = sprintf(\"%1000s\", \"\"); gsub(/ /, \"x\", s); for (i = 0; i < 3000; i++) print s }'"]


def _wait_for(predicate, *, timeout: float = 30, interval: float = 0.2):  # noqa: ANN001, ANN202
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def test_engine_negotiates_the_daemons_api_version(world: World, engine: DockerEngine) -> None:
    assert engine.api_version is None  # nothing asked yet
    engine.list_containers()
    assert engine.api_version == "1.41"  # what 20.10 speaks: no version pinned anywhere
    version = engine.version()
    assert version["version"].startswith("20.10") and version["negotiated_api_version"] == "1.41"


def test_logs_tail_since_and_timestamps(world: World, engine: DockerEngine, image: dict) -> None:
    import datetime as dt
    import time

    created = engine.create_container(image=world.image_ref, name="talker", command=PRINT_THEN_SLEEP)
    logs = _wait_for(lambda: engine.container_logs(container_id="talker")["logs"])
    assert _wait_for(lambda: "oops" in engine.container_logs(container_id=created["id"])["logs"])
    whole = engine.container_logs(container_id="talker")
    assert whole["truncated"] is False
    assert [ln for ln in whole["logs"].splitlines() if ln.startswith("line-")] == [f"line-{i}" for i in range(1, 6)]
    assert "oops" in whole["logs"]  # stderr too
    last_two = engine.container_logs(container_id="talker", tail=2)["logs"].splitlines()
    assert last_two == whole["logs"].splitlines()[-2:] and len(last_two) == 2
    stamped = engine.container_logs(container_id="talker", tail=1, timestamps=True)["logs"]
    assert stamped.split(" ", 1)[1].strip() == last_two[-1]
    assert dt.datetime.fromisoformat(stamped.split(" ", 1)[0][:19])  # RFC 3339 time first
    time.sleep(1.1)
    later = int(time.time())
    assert engine.container_logs(container_id="talker", since=later)["logs"] == ""
    assert logs


def test_logs_of_a_container_printing_3_mib_stop_at_1_mib(world: World, engine: DockerEngine, image: dict) -> None:
    done = engine.create_container(image=world.image_ref, command=PRINT_3_MIB, detach=False)
    assert done["exit_code"] == 0
    answer = engine.container_logs(container_id=done["id"], tail=5000)
    assert answer["truncated"] is True
    assert len(answer["logs"].encode()) == 1024 * 1024
    small = engine.container_logs(container_id=done["id"], tail=10)
    assert small["truncated"] is False and len(small["logs"]) == 10 * 1001


def test_stop_start_restart(world: World, engine: DockerEngine, image: dict) -> None:
    created = engine.create_container(image=world.image_ref, name="cycled")
    assert engine.stop_container(container_id="cycled", timeout_s=1)["status"] == "exited"
    assert engine.inspect_container(container_id="cycled")["state"]["running"] is False
    assert engine.start_container(container_id="cycled")["status"] == "running"
    started = engine.inspect_container(container_id=created["id"])["state"]["started_at"]
    restarted = engine.restart_container(container_id="cycled", timeout_s=1)
    assert restarted == {"id": created["id"], "name": "cycled", "status": "running"}
    assert engine.inspect_container(container_id="cycled")["state"]["started_at"] != started
    with pytest.raises(NotFound):
        engine.start_container(container_id="no-such-container")


def test_inspect_shows_options_but_never_env_values(world: World, engine: DockerEngine, image: dict) -> None:
    engine.create_container(
        image=world.image_ref, name="described", env={"API_TOKEN": "hunter2-lab"},
        ports=[{"host": 8090, "container": 80}],
        restart_policy="on-failure", labels={"team": "web"},
        volumes=[{"name": "described-data", "container_path": "/data", "read_only": True}],
    )
    info = engine.inspect_container(container_id="described")
    assert "API_TOKEN" in info["env_keys"] and "hunter2-lab" not in repr(info)
    assert info["restart_policy"]["name"] == "on-failure"
    assert info["labels"] == {"team": "web"}
    assert info["ports"] == [{"host": 8090, "container": 80, "protocol": "tcp"}]
    assert info["volumes"] == [{"name": "described-data", "container_path": "/data", "read_only": True}]
    assert world.image_ref in {t for row in engine.list_images() for t in row["repo_tags"]}
    assert all(row["created"].endswith("Z") for row in engine.list_images())


def test_unless_stopped_container_is_running_again_after_dockerd_restarts(
    world: World, engine: DockerEngine, image: dict
) -> None:
    engine.create_container(image=world.image_ref, name="survivor", restart_policy="unless-stopped")
    engine.create_container(image=world.image_ref, name="mortal")  # restart policy "no"
    world.node_dockerd.stop()
    world.node_dockerd.start()
    assert _wait_for(lambda: engine.inspect_container(container_id="survivor")["status"] == "running")
    assert engine.inspect_container(container_id="mortal")["status"] == "exited"
