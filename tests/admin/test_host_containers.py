"""The Docker host page's container buttons (start/stop/restart) and logs page: each one registry action
run as the logged-in operator (a recording engine stands in for the daemon; the real one is in tests/lab)."""

from __future__ import annotations

from typing import Any

import pytest

from apps.docker_hosts.services import operations
from apps.events.models import Event
from tests.admin.conftest import messages_of
from tests.factories import DockerHostFactory

HEX64 = "0123456789abcdef" * 4


class DaemonStandIn:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict]] = []

    def list_containers(self, **kwargs: Any) -> list[dict]:
        return [
            {"id": HEX64, "name": "web", "image": "hello:1", "status": "Up 3 minutes", "ports": []},
            {"id": "f" * 64, "name": "batch", "image": "hello:1", "status": "Exited (0) 1 minute ago", "ports": []},
        ]

    def __getattr__(self, method: str) -> Any:
        def call(**kwargs: Any) -> dict[str, Any]:
            self.calls.append((method, kwargs))
            if method == "container_logs":
                return {"logs": "line one\n<script>alert(1)</script>\n", "truncated": True}
            return {"id": HEX64, "name": kwargs.get("container_id"), "status": "running"}

        return call


@pytest.fixture
def daemon(db, monkeypatch) -> DaemonStandIn:
    fake = DaemonStandIn()
    monkeypatch.setattr(operations, "_engine", lambda host: fake)
    return fake


@pytest.fixture
def host(db) -> Any:
    return DockerHostFactory(connected=True, api_version="1.41")


def url(host_id: str, suffix: str) -> str:
    return f"/admin/docker_hosts/dockerhost/{host_id}/{suffix}"


def test_host_page_offers_stop_restart_for_running_and_start_for_stopped(root_client, daemon, host):
    html = root_client.get(url(host.id, "change/")).content.decode()
    assert f'action="{url(host.id, "containers/web/stop/")}"' in html
    assert f'action="{url(host.id, "containers/web/restart/")}"' in html
    assert f'action="{url(host.id, "containers/batch/start/")}"' in html
    assert f'action="{url(host.id, "containers/batch/stop/")}"' not in html
    assert f'href="{url(host.id, "containers/web/logs/")}"' in html
    assert 'id="pn-api-version">API 1.41<' in html


@pytest.mark.parametrize("operation", ["start", "stop", "restart"])
def test_buttons_run_the_action_and_record_its_event(root_client, daemon, host, operation):
    response = root_client.post(url(host.id, f"containers/web/{operation}/"), follow=True)
    assert response.status_code == 200
    assert daemon.calls[0][0] == f"{operation}_container"
    assert any(f"{operation}: web is running" in m for m in messages_of(response))
    assert Event.objects.filter(kind__startswith="system.docker.container.", host_id=host.id).count() == 1


def test_lifecycle_is_post_only(root_client, daemon, host):
    assert root_client.get(url(host.id, "containers/web/stop/")).status_code == 404
    assert root_client.post(url(host.id, "containers/web/kill/")).status_code == 404
    assert daemon.calls == []


def test_logs_page_shows_escaped_logs_and_truncation(root_client, daemon, host):
    response = root_client.get(url(host.id, "containers/web/logs/") + "?tail=50")
    html = response.content.decode()
    assert response.status_code == 200
    assert "line one" in html and "<script>alert(1)" not in html and "&lt;script&gt;" in html
    assert 'id="pn-logs-truncated"' in html
    assert daemon.calls == [("container_logs", {"container_id": "web", "tail": 50, "since": None,
                                                "timestamps": False})]


def test_a_viewer_gets_no_buttons_and_cannot_post(client, make_operator, daemon, host):
    from django.contrib.auth.models import Permission

    user = make_operator("viewer", perms=["docker_view"])
    user.user_permissions.add(Permission.objects.get(codename="view_dockerhost"))
    user.is_staff = True
    user.save()
    client.force_login(user)
    html = client.get(url(host.id, "change/")).content.decode()
    assert "web" in html and "containers/web/stop/" not in html
    assert client.post(url(host.id, "containers/web/stop/")).status_code == 403
    assert client.get(url(host.id, "containers/web/logs/")).status_code == 403
    assert daemon.calls == []
    assert not Event.objects.filter(kind__startswith="system.docker.container.").exists()
