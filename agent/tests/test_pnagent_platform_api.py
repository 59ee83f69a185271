"""PlatformClient: Bearer token, JSON bodies, the platform's error shape, unreachable platform."""

from __future__ import annotations

import json
import socket

import pytest

from powernode_agent import __version__
from powernode_agent.platform_api import AgentApiError, PlatformClient


def test_heartbeat_sends_token_version_and_runtimes(fake_platform) -> None:
    client = PlatformClient(fake_platform.url, fake_platform.token)
    answer = client.heartbeat(runtimes={"docker": {"phase": "none"}}, wireguard_public_key="pub=")
    assert answer["instance_id"] == fake_platform.instance_id
    sent = fake_platform.requests[-1]
    assert sent.headers["Authorization"] == f"Bearer {fake_platform.token}"
    assert sent.body == {
        "agent_version": __version__,
        "runtimes": {"docker": {"phase": "none"}},
        "wireguard_public_key": "pub=",
    }


def test_error_shape_becomes_agent_api_error(fake_platform) -> None:
    fake_platform.errors["wants_cert"] = (409, "ModuleNotAssignedError", "docker-engine is not assigned")
    client = PlatformClient(fake_platform.url, fake_platform.token)
    with pytest.raises(AgentApiError) as caught:
        client.handshake("wants_cert", csr_pem="x")
    assert (caught.value.type, caught.value.status) == ("ModuleNotAssignedError", 409)
    assert caught.value.message == "docker-engine is not assigned"
    assert caught.value.is_conflict


def test_bad_token_is_a_401_error(fake_platform) -> None:
    client = PlatformClient(fake_platform.url, "pna_wrong")
    with pytest.raises(AgentApiError) as caught:
        client.heartbeat(runtimes={})
    assert caught.value.status == 401
    assert caught.value.type == "NotAuthenticated"


def test_unreachable_platform(monkeypatch) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = PlatformClient(f"http://127.0.0.1:{port}", "pna_x", timeout_s=2)
    with pytest.raises(AgentApiError) as caught:
        client.heartbeat(runtimes={})
    assert caught.value.type == "PlatformUnreachable"
    assert caught.value.status is None


def test_proxy_variables_are_ignored(fake_platform, monkeypatch) -> None:
    # A proxy that does not exist: if the client used it, the request would fail.
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    client = PlatformClient(fake_platform.url, fake_platform.token)
    assert client.handshake("installing") == {"next_phase": "wants_cert"}


def test_a_watch_heartbeat_carries_the_version_and_outwaits_it(monkeypatch) -> None:
    client = PlatformClient("http://127.0.0.1:9", "pna_x_y", timeout_s=30)
    sent: list[tuple[dict, float]] = []

    class Answer:
        def __enter__(self):  # noqa: ANN204
            return self

        def __exit__(self, *exc) -> None:  # noqa: ANN002
            return None

        def read(self) -> bytes:
            return b'{"desired_version": "v2"}'

    def open_(request, timeout):  # noqa: ANN001, ANN202
        sent.append((json.loads(request.data), timeout))
        return Answer()

    monkeypatch.setattr(client._opener, "open", open_)
    client.heartbeat(runtimes={}, desired_version="v1", wait_s=50)
    client.heartbeat(runtimes={})
    (watch_body, watch_timeout), (plain_body, plain_timeout) = sent
    assert watch_body["desired_version"] == "v1" and watch_body["wait_s"] == 50
    assert watch_timeout > 50  # the read timeout outlasts the hold
    assert "desired_version" not in plain_body and "wait_s" not in plain_body and plain_timeout == 30
