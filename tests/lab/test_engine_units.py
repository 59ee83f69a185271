"""Pure logic of the Docker engine adapter: input shaping, port listing, error translation, client cache.

No daemon: a DockerEngine makes no connection until it is used (the API version is pinned).
"""

from __future__ import annotations

import os

import docker.errors
import pytest
import requests

from apps.docker_hosts.adapters import engine as engine_mod
from apps.docker_hosts.adapters.engine import DockerEngine, _environment, _port_bindings, _ports_of, engine_for
from powernode.errors import DockerDaemonError, NotFound, ValidationError

MATERIAL = {"endpoint": "tcp://[fd00:db8::2]:2376", "ca_pem": "ca", "cert_pem": "cert", "key_pem": "key"}


@pytest.fixture
def offline_engine():
    eng = DockerEngine(**MATERIAL)
    yield eng
    eng.close()


def test_ports_become_exposed_ports_and_bindings() -> None:
    exposed, bindings = _port_bindings([{"host": "8080", "container": 80}, {"host": 53, "container": 53,
                                                                            "protocol": "UDP"}])
    assert exposed == [(80, "tcp"), (53, "udp")]
    assert bindings == {"80/tcp": 8080, "53/udp": 53}


@pytest.mark.parametrize("port", [{"host": 8080}, {"host": "x", "container": 80}, {"host": 0, "container": 80},
                                  {"host": 8080, "container": 70000}, {"host": 1, "container": 1, "protocol": "icmp"}])
def test_bad_ports_are_validation_errors(port: dict) -> None:
    with pytest.raises(ValidationError):
        _port_bindings([port])


def test_environment_accepts_mapping_or_list() -> None:
    assert _environment({"A": "1", "B": "x=y"}) == ["A=1", "B=x=y"]
    assert _environment(["A=1"]) == ["A=1"]
    assert _environment(None) is None
    with pytest.raises(ValidationError):
        _environment("A=1")


def test_ports_listed_once_per_binding_not_per_address_family() -> None:
    rows = [
        {"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
        {"IP": "::", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
        {"PrivatePort": 443, "Type": "tcp"},
    ]
    assert _ports_of(rows) == [
        {"host": 8080, "container": 80, "protocol": "tcp"},
        {"host": None, "container": 443, "protocol": "tcp"},
    ]


def test_plain_unix_or_http_endpoints_are_refused() -> None:
    for endpoint in ("unix:///var/run/docker.sock", "http://[fd00::1]:2375"):
        with pytest.raises(ValidationError):
            DockerEngine(**{**MATERIAL, "endpoint": endpoint})


def _response(status: int) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    return response


@pytest.mark.parametrize(
    ("vendor", "expected", "text"),
    [
        (docker.errors.NotFound("x", response=_response(404), explanation="No such container: x"), NotFound,
         "No such container: x"),
        (docker.errors.ImageNotFound("x", response=_response(404), explanation="No such image: y"), NotFound,
         "No such image: y"),
        (docker.errors.APIError("x", response=_response(409), explanation="conflict: in use"), DockerDaemonError,
         "conflict: in use"),
        (requests.exceptions.SSLError("certificate verify failed"), DockerDaemonError, "TLS"),
        (requests.exceptions.ConnectTimeout("slow"), DockerDaemonError, "timed out"),
        (requests.exceptions.ConnectionError("refused"), DockerDaemonError, "cannot reach"),
        (docker.errors.DockerException("odd"), DockerDaemonError, "odd"),
    ],
)
def test_vendor_errors_become_application_errors(offline_engine, vendor, expected, text) -> None:
    with pytest.raises(expected) as err:
        with offline_engine._errors():
            raise vendor
    assert text in err.value.message
    assert err.value.details["endpoint"] == MATERIAL["endpoint"]


def test_pem_files_are_private_and_removed_on_close() -> None:
    eng = DockerEngine(**MATERIAL)
    directory = eng._tls_dir
    assert oct(os.stat(directory).st_mode & 0o777) == "0o700"
    assert oct(os.stat(os.path.join(directory, "key.pem")).st_mode & 0o777) == "0o600"
    eng.close()
    assert not os.path.exists(directory)


def test_engine_for_caches_per_key_and_replaces_on_new_material() -> None:
    try:
        first = engine_for("host-a", **MATERIAL)
        assert engine_for("host-a", **MATERIAL) is first
        other_host = engine_for("host-b", **MATERIAL)
        assert other_host is not first
        rotated = engine_for("host-a", **{**MATERIAL, "cert_pem": "cert-2"})
        assert rotated is not first and first.closed and not rotated.closed
        engine_mod.forget_engine("host-a")
        assert rotated.closed
    finally:
        engine_mod.close_all_engines()
    assert other_host.closed
