"""The engine adapter against a tiny fake dockerd (HTTPS with a client certificate, like the real one):
API version negotiation, the recorded refusal of Docker Engine 29, the logs cap and env values.

A real HTTP server answering what a daemon answers, not a mock of docker-py: what is tested is the
adapter's requests on the wire.
"""

from __future__ import annotations

import json
import re
import socket
import ssl
import struct
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest
from docker.tls import TLSConfig

from apps.docker_hosts.adapters.engine import CLIENT_MAX_API_VERSION, LOG_CAP_BYTES, DockerEngine
from lab.pki import LabCa
from powernode.errors import DockerDaemonError

# Recorded from Docker Engine 29 (moby/moby#50620): the answer to any /v1.41/ request.
TOO_OLD = {
    "message": "client version 1.41 is too old. Minimum supported API version is 1.44, "
    "please upgrade your client to a newer version"
}
HEX64 = "0123456789abcdef" * 4


class FakeDaemon:
    """Answers like dockerd: unversioned /version, versioned paths refused below ``min_api``."""

    def __init__(self, *, api: str, min_api: str) -> None:
        self.api, self.min_api = api, min_api
        self.requests: list[str] = []
        self.log_bytes = 0  # size of the multiplexed log the daemon sends
        self.log_sent = 0  # what it managed to write before the client hung up

    def version_body(self) -> dict[str, Any]:
        return {"Version": "29.0.0" if self.min_api >= "1.44" else "20.10.24", "ApiVersion": self.api,
                "MinAPIVersion": self.min_api, "Os": "linux", "Arch": "amd64", "KernelVersion": "6.1"}


def _handler(daemon: FakeDaemon) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _json(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            daemon.requests.append(self.path)
            path = self.path.split("?", 1)[0]
            if path == "/version":
                return self._json(200, daemon.version_body())
            match = re.match(r"^/v(\d+\.\d+)(/.*)$", path)
            if not match:
                return self._json(404, {"message": "page not found"})
            version, rest = match.groups()
            if tuple(map(int, version.split("."))) < tuple(map(int, daemon.min_api.split("."))):
                return self._json(400, {"message": TOO_OLD["message"].replace("1.41", version)})
            if rest == "/containers/json":
                return self._json(200, [{"Id": HEX64, "Names": ["/hello"], "Image": "hello:1", "Status": "Up 1 second",
                                         "Ports": []}])
            if rest == "/containers/hello/json":
                return self._json(200, {
                    "Id": HEX64, "Name": "/hello", "Image": "sha256:" + HEX64, "Created": "2026-12-02T15:00:00Z",
                    "RestartCount": 0,
                    "State": {"Status": "running", "Running": True, "ExitCode": 0},
                    "Config": {"Image": "hello:1", "Tty": False, "Env": ["API_TOKEN=hunter2", "PATH=/bin"],
                               "Labels": {"team": "web"}},
                    "HostConfig": {"RestartPolicy": {"Name": "unless-stopped", "MaximumRetryCount": 0}},
                    "NetworkSettings": {"Ports": {"80/tcp": [{"HostIp": "fd00::2", "HostPort": "8080"}]}},
                    "Mounts": [{"Type": "volume", "Name": "data", "Destination": "/data", "RW": True}],
                })
            if rest == "/containers/hello/logs":
                return self._logs()
            return self._json(404, {"message": f"no such path {rest}"})

        def _logs(self) -> None:
            line = b"x" * 1023 + b"\n"
            frame = struct.pack(">BxxxL", 1, len(line)) + line  # stdout frame, as dockerd multiplexes it
            self.send_response(200)
            self.send_header("Content-Type", "application/vnd.docker.multiplexed-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            try:
                while daemon.log_sent < daemon.log_bytes:
                    chunk = frame * 64
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    daemon.log_sent += len(chunk)
                self.wfile.write(b"0\r\n\r\n")
            except OSError:
                pass  # the client closed the stream at its cap

    return Handler


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    ca = LabCa("fake dockerd CA")
    server = ca.issue_server("fake dockerd", ips=["127.0.0.1"])
    client = ca.issue_client("platform")
    directory = tmp_path_factory.mktemp("fake-dockerd")
    files = {}
    for name, text in {"ca": ca.ca_pem, "cert": server.cert_pem, "key": server.key_pem,
                       "client_cert": client.cert_pem, "client_key": client.key_pem}.items():
        files[name] = directory / f"{name}.pem"
        files[name].write_text(text)
    return {"ca": ca, "client": client, "files": files}


@pytest.fixture
def daemon_at(pki: dict[str, Any]) -> Iterator[Any]:
    servers = []

    def start(*, api: str, min_api: str) -> tuple[FakeDaemon, str]:
        fake = FakeDaemon(api=api, min_api=min_api)
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki["files"]["ca"]))
        context.load_cert_chain(str(pki["files"]["cert"]), str(pki["files"]["key"]))
        context.verify_mode = ssl.CERT_REQUIRED  # mutual TLS, like the managed dockerd
        server.socket = context.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return fake, f"tcp://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _engine(pki: dict[str, Any], endpoint: str) -> DockerEngine:
    return DockerEngine(endpoint=endpoint, ca_pem=pki["ca"].ca_pem, cert_pem=pki["client"].cert_pem,
                        key_pem=pki["client"].key_pem, connect_timeout=3, read_timeout=10)


def test_a_client_pinned_to_1_41_gets_engine_29s_refusal(pki, daemon_at):
    """What every docker_* action met before negotiation: the recorded 400 (then a 502 to operators)."""
    daemon, endpoint = daemon_at(api="1.52", min_api="1.44")
    files: dict[str, Path] = pki["files"]
    tls = TLSConfig(client_cert=(str(files["client_cert"]), str(files["client_key"])), ca_cert=str(files["ca"]),
                    verify=True)
    pinned = docker.APIClient(base_url=endpoint, tls=tls, version="1.41")
    pinned.trust_env = False
    with pytest.raises(docker.errors.APIError) as err:
        pinned.containers()
    assert err.value.status_code == 400
    assert "client version 1.41 is too old. Minimum supported API version is 1.44" in str(err.value)
    pinned.close()


def test_the_engine_negotiates_with_a_daemon_that_refuses_old_versions(pki, daemon_at):
    daemon, endpoint = daemon_at(api="1.52", min_api="1.44")
    with _engine(pki, endpoint) as engine:
        assert [c["name"] for c in engine.list_containers()] == ["hello"]
        assert engine.api_version == CLIENT_MAX_API_VERSION  # docker-py's newest, >= the daemon's minimum
        engine.list_containers()
    # /version read once (unversioned), then only versioned calls at the negotiated version
    assert daemon.requests[0] == "/version"
    assert daemon.requests.count("/version") == 1
    assert all(r.startswith(f"/v{CLIENT_MAX_API_VERSION}/") for r in daemon.requests[1:])


def test_the_engine_speaks_1_41_to_a_20_10_daemon(pki, daemon_at):
    daemon, endpoint = daemon_at(api="1.41", min_api="1.12")
    with _engine(pki, endpoint) as engine:
        engine.list_containers()
        assert engine.api_version == "1.41"
        assert engine.version()["version"] == "20.10.24"
    assert "/v1.41/containers/json?limit=-1&all=0&size=0&trunc_cmd=0" in daemon.requests


def test_a_daemon_upgraded_under_a_cached_engine_is_renegotiated_and_the_call_retried(pki, daemon_at):
    daemon, endpoint = daemon_at(api="1.41", min_api="1.12")
    with _engine(pki, endpoint) as engine:
        engine.list_containers()
        assert engine.api_version == "1.41"
        # dockerd is upgraded to Engine 29: the next call meets the recorded refusal, renegotiates once
        daemon.api, daemon.min_api = "1.52", "1.44"
        assert [c["name"] for c in engine.list_containers()] == ["hello"]
        assert engine.api_version == CLIENT_MAX_API_VERSION
    assert daemon.requests[-3:] == [
        "/v1.41/containers/json?limit=-1&all=0&size=0&trunc_cmd=0",
        "/version",
        f"/v{CLIENT_MAX_API_VERSION}/containers/json?limit=-1&all=0&size=0&trunc_cmd=0",
    ]


def test_a_daemon_newer_than_the_client_can_speak_is_a_clear_502(pki, daemon_at):
    daemon, endpoint = daemon_at(api="1.60", min_api="1.50")
    with _engine(pki, endpoint) as engine, pytest.raises(DockerDaemonError) as err:
        engine.list_containers()
    assert "needs API 1.50 or newer" in err.value.message
    assert err.value.details["client_max_api_version"] == CLIENT_MAX_API_VERSION


def test_inspect_returns_env_keys_never_values(pki, daemon_at):
    daemon, endpoint = daemon_at(api="1.41", min_api="1.12")
    with _engine(pki, endpoint) as engine:
        container = engine.inspect_container(container_id="hello")
    assert container["env_keys"] == ["API_TOKEN", "PATH"]
    assert "hunter2" not in json.dumps(container)
    assert container["restart_policy"] == {"name": "unless-stopped", "maximum_retry_count": 0}
    assert container["ports"] == [{"host": 8080, "container": 80, "protocol": "tcp"}]
    assert container["labels"] == {"team": "web"}
    assert container["volumes"] == [{"name": "data", "container_path": "/data", "read_only": False}]


def test_logs_stop_reading_at_the_cap(pki, daemon_at):
    daemon, endpoint = daemon_at(api="1.41", min_api="1.12")
    daemon.log_bytes = 32 * 1024 * 1024
    with _engine(pki, endpoint) as engine:
        answer = engine.container_logs(container_id="hello", tail=5000)
    assert answer["truncated"] is True
    assert len(answer["logs"].encode()) == LOG_CAP_BYTES
    # The daemon could not push the whole 32 MiB: the client closed the stream at the cap.
    assert daemon.log_sent < daemon.log_bytes


def test_small_logs_are_whole(pki, daemon_at):
    daemon, endpoint = daemon_at(api="1.41", min_api="1.12")
    daemon.log_bytes = 64 * 1024
    with _engine(pki, endpoint) as engine:
        answer = engine.container_logs(container_id="hello", tail=10)
    assert answer["truncated"] is False
    assert len(answer["logs"]) == 64 * 1024  # 64 lines of 1 KiB
    assert any("tail=10" in r for r in daemon.requests)


def _serve_on(pki: dict[str, Any], fake: FakeDaemon, port: int) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", port), _handler(fake))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki["files"]["ca"]))
    context.load_cert_chain(str(pki["files"]["cert"]), str(pki["files"]["key"]))
    context.verify_mode = ssl.CERT_REQUIRED
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_a_daemon_restarting_under_a_call_is_waited_for_when_the_connection_is_refused(pki):
    """dockerd restarting (a renewal with live-restore): connections are refused for a moment. The request
    never reached the daemon, so the engine tries again for up to refused_retry_s and the call succeeds."""
    fake = FakeDaemon(api="1.41", min_api="1.12")
    first = _serve_on(pki, fake, 0)
    port = first.server_address[1]
    endpoint = f"tcp://127.0.0.1:{port}"
    engine = DockerEngine(endpoint=endpoint, ca_pem=pki["ca"].ca_pem, cert_pem=pki["client"].cert_pem,
                          key_pem=pki["client"].key_pem, connect_timeout=3, read_timeout=10, refused_retry_s=5)
    servers = [first]
    try:
        assert [c["name"] for c in engine.list_containers()] == ["hello"]
        first.shutdown()
        first.server_close()
        engine._api.close()  # dockerd's exit ends its kept-alive connections too (this fake's threads would not)
        threading.Timer(0.6, lambda: servers.append(_serve_on(pki, fake, port))).start()
        before = len(fake.requests)
        assert [c["name"] for c in engine.list_containers()] == ["hello"]
        assert len(servers) == 2  # answered by the daemon that came back
        assert fake.requests[before:][-1].startswith("/v1.41/containers/json")
    finally:
        engine.close()
        for server in servers[1:]:
            server.shutdown()
            server.server_close()


def test_a_refused_connection_fails_after_the_retry_window_with_a_clear_error(pki):
    with socket.socket() as sock:  # a loopback port with nothing listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    endpoint = f"tcp://127.0.0.1:{port}"
    kwargs = dict(ca_pem=pki["ca"].ca_pem, cert_pem=pki["client"].cert_pem, key_pem=pki["client"].key_pem,
                  connect_timeout=3, read_timeout=10)
    with DockerEngine(endpoint=endpoint, refused_retry_s=0.5, **kwargs) as engine:
        with pytest.raises(DockerDaemonError) as err:
            engine.list_containers()
        assert "cannot reach the Docker daemon" in str(err.value)
        assert err.value.details == {"endpoint": endpoint}
        with pytest.raises(DockerDaemonError):  # the probe's version() too (it is not retried)
            engine.version()
