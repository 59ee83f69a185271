"""Log lines: JSON in production with time, level, logger, message, request id, actor, instance and host ids."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from django.test import Client

from powernode.logs import JsonFormatter
from tests.csr import make_csr
from tests.deploy.helpers import clean_env, production_env, python
from tests.servers import production_env as server_env
from tests.servers import serve, setup_platform


@contextmanager
def request_lines() -> Iterator[list[dict]]:
    """What the powernode.request logger writes at INFO through the production formatter, parsed at the end."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("powernode.request")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    lines: list[dict] = []
    try:
        yield lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
        lines.extend(json.loads(line) for line in stream.getvalue().splitlines())


def test_the_request_id_is_the_callers_when_sane_else_a_new_one(db):
    given = Client().get("/api/v1/pki/ca", HTTP_X_REQUEST_ID="lb-1234.abc")
    assert given["X-Request-ID"] == "lb-1234.abc"
    made = Client().get("/api/v1/pki/ca")
    assert re.fullmatch(r"[0-9a-f]{32}", made["X-Request-ID"])
    for bad in ("two words", "x" * 200, "<script>", "é"):
        replaced = Client().get("/api/v1/pki/ca", HTTP_X_REQUEST_ID=bad)["X-Request-ID"]
        assert replaced != bad and re.fullmatch(r"[0-9a-f]{32}", replaced)


def test_a_heartbeat_line_names_its_request_agent_and_instance(docker_fleet):
    with request_lines() as lines:
        answer = Client().post(
            "/api/v1/agent/heartbeat",
            {"agent_version": "1.0"},
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {docker_fleet['agent_token']}",
            HTTP_X_REQUEST_ID="hb-1",
        )
    assert answer.status_code == 200
    (line,) = [x for x in lines if x.get("request_id") == "hb-1"]
    assert line["level"] == "INFO" and line["logger"] == "powernode.request"
    assert line["message"] == "POST /api/v1/agent/heartbeat 200"
    assert line["status"] == 200 and line["method"] == "POST" and line["duration_ms"] >= 0
    assert line["actor"] == f"agent:{docker_fleet['instance']['name']}"
    assert line["instance_id"] == docker_fleet["instance"]["id"]
    assert dt.datetime.fromisoformat(line["time"]).tzinfo is not None


def test_a_handshake_line_names_the_host_and_an_action_line_the_operator(admin_user, api, docker_fleet):
    token = docker_fleet["agent_token"]
    with request_lines() as lines:
        for phase, extra in (("installing", {}), ("wants_cert", {"csr_pem": make_csr()})):
            answer = Client().post(
                "/api/v1/runtime/handshake",
                {"runtime": "docker", "phase": phase, **extra},
                content_type="application/json",
                HTTP_AUTHORIZATION=f"Bearer {token}",
                HTTP_X_REQUEST_ID=f"hs-{phase}",
            )
            assert answer.status_code == 200, answer.content
        host_id = answer.json()["host_id"]
        api.call("docker_list_containers", {"host_id": host_id})  # refused (no daemon here): still its line
    by_id = {line.get("request_id"): line for line in lines}
    assert "host_id" not in by_id["hs-installing"]  # no host yet
    assert by_id["hs-wants_cert"]["host_id"] == host_id
    (action,) = [line for line in lines if line["path"] == "/api/v1/actions/docker_list_containers"]
    assert action["actor"] == admin_user.get_username() and action["host_id"] == host_id


def test_production_logs_json_and_development_text_and_a_wrong_format_is_refused(tmp_path: Path):
    show = "from django.conf import settings as s; print(s.LOGGING['handlers']['console']['formatter'])"
    assert python(show, production_env(tmp_path)).stdout.strip() == "json"
    assert python(show, clean_env(tmp_path, DJANGO_DEBUG="true")).stdout.strip() == "text"
    assert python(show, production_env(tmp_path, POWERNODE_LOG_FORMAT="text")).stdout.strip() == "text"
    refused = python(show, production_env(tmp_path, POWERNODE_LOG_FORMAT="yaml"))
    assert refused.returncode != 0 and "POWERNODE_LOG_FORMAT must be json or text" in refused.stderr


def test_a_production_server_writes_only_json_lines(tmp_path: Path):
    env = server_env(tmp_path, POWERNODE_LOG_LEVEL="INFO")
    token = setup_platform(env)
    with serve(env, tmp_path) as (server,):
        answer = httpx.post(
            f"{server.url}/api/v1/actions/system_list_modules",
            json={},
            headers={"Authorization": f"Bearer {token}", "X-Request-ID": "e2e-42"},
        )
        assert answer.status_code == 200 and answer.headers["X-Request-ID"] == "e2e-42"
        assert httpx.get(f"{server.url}/api/v1/pki/ca").headers["X-Request-ID"]
    lines = [json.loads(line) for line in server.log.read_text().splitlines() if line.strip()]
    assert lines, "the server logged nothing at INFO"
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    (action,) = [line for line in lines if line.get("request_id") == "e2e-42"]
    assert action["actor"] == "admin" and action["status"] == 200
    assert action["message"] == "POST /api/v1/actions/system_list_modules 200"
