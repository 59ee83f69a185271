"""container_id, image_id and image must look like a Docker id, name or reference (issue 11, item 11).

The engine adapter puts them into request paths: ``../volumes/data`` as a container id would delete a
volume and be logged as a container deletion. A connected host with a recording engine shows that a
refused id is a 400 before any engine call, with no event.
"""

from __future__ import annotations

from typing import Any

import pytest

from apps.docker_hosts.services import operations
from apps.events.models import Event
from tests.factories import DockerHostFactory
from tests.handshake.conftest import assert_error

HEX64 = "0123456789abcdef" * 4


class RecordingEngine:
    """Stands in for the engine adapter: records each call, answers like a daemon would."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple, dict]] = []

    def __getattr__(self, method: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> dict[str, Any]:
            self.calls.append((method, args, kwargs))
            return {"id": HEX64, "name": "hello", "status": "running", "repo_tags": [], "size": 1}

        return call


@pytest.fixture
def engine(db, monkeypatch) -> RecordingEngine:
    fake = RecordingEngine()
    monkeypatch.setattr(operations, "_engine", lambda host: fake)
    return fake


@pytest.fixture
def host_id(db) -> str:
    return DockerHostFactory(connected=True).id


BAD_CONTAINER_IDS = ["../volumes/data", "/containers/x", "a/../../volumes/data", "..", ".hidden", "x\n", "a b", ""]
BAD_IMAGES = [
    "../volumes/data",
    "/etc/passwd",
    "registry.lab:5000/../hello:1",
    "hello/../../x",
    "hello//x",
    "Hello",  # repository names are lower case
    "hello:1\n",
    "hello:1 --privileged",
]
GOOD_CONTAINER_IDS = ["hello", "web_1.blue-2", HEX64, HEX64[:12]]
GOOD_IMAGES = [
    "hello",
    "hello:1",
    "registry.lab:5000/hello:1",
    "registry.powernode.internal:5000/team/app_x:v1.2-rc",
    f"localhost/hello@sha256:{HEX64}",
]
GOOD_IMAGE_IDS = [f"sha256:{HEX64}", HEX64[:12], *GOOD_IMAGES]


def _refused(api, name: str, payload: dict[str, Any], engine: RecordingEngine) -> None:
    before = Event.objects.count()
    status, body = api.call(name, payload)
    assert_error(status, body, 400, "ValidationError")
    assert engine.calls == [] and Event.objects.count() == before


@pytest.mark.parametrize("container_id", BAD_CONTAINER_IDS)
def test_a_container_id_that_is_a_path_is_400_before_the_engine(api, engine, host_id, container_id):
    _refused(api, "docker_delete_container", {"host_id": host_id, "container_id": container_id}, engine)


@pytest.mark.parametrize("image_id", BAD_IMAGES + ["sha256:../x"])
def test_an_image_id_that_is_a_path_is_400_before_the_engine(api, engine, host_id, image_id):
    _refused(api, "docker_delete_image", {"host_id": host_id, "image_id": image_id}, engine)


@pytest.mark.parametrize("image", BAD_IMAGES)
@pytest.mark.parametrize("name", ["docker_pull_image", "docker_create_container"])
def test_an_image_reference_with_path_tricks_is_400_before_the_engine(api, engine, host_id, name, image):
    _refused(api, name, {"host_id": host_id, "image": image}, engine)


@pytest.mark.parametrize("container_id", GOOD_CONTAINER_IDS)
def test_container_ids_and_names_reach_the_engine(api, engine, host_id, container_id):
    api.ok("docker_delete_container", {"host_id": host_id, "container_id": container_id})
    assert engine.calls == [("delete_container", (), {"container_id": container_id, "force": False})]


@pytest.mark.parametrize("image_id", GOOD_IMAGE_IDS)
def test_image_ids_and_references_reach_the_engine(api, engine, host_id, image_id):
    api.ok("docker_delete_image", {"host_id": host_id, "image_id": image_id})
    assert engine.calls == [("delete_image", (), {"image_id": image_id})]


@pytest.mark.parametrize("image", GOOD_IMAGES)
def test_image_references_are_pulled(api, engine, host_id, image):
    api.ok("docker_pull_image", {"host_id": host_id, "image": image})
    assert engine.calls == [("pull_image", (image,), {"auth": None})]
