"""The one stand-in agent for tests: the heartbeat and handshake bodies powernode-agent sends, as (status, json).

In process through Django's test client by default. With ``base_url`` (a live server, uvicorn) it goes
over real HTTP through the agent package's own client (``powernode_agent.platform_api.PlatformClient``),
so no second HTTP client is written here. Tests that need the whole agent (state, walker) drive
powernode_agent directly (tests/handshake/test_real_agent.py).
"""

from __future__ import annotations

import json
from typing import Any

from rest_framework.test import APIClient

from tests.csr import make_csr

HEARTBEAT = "/api/v1/agent/heartbeat"
HANDSHAKE = "/api/v1/runtime/handshake"
AGENT_VERSION = "0.1.0"
ENGINE_VERSION = "20.10.24"


class AgentClient:
    """Plays one agent with its instance's token; every call returns (status, json) unless it says ``ok``."""

    def __init__(self, token: str | None, *, base_url: str | None = None, timeout_s: float = 30.0) -> None:
        self.token = token
        self.base_url = base_url
        if base_url is None:
            self.client = APIClient()
            if token:
                self.client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        else:
            from powernode_agent.platform_api import PlatformClient

            self.http = PlatformClient(base_url, token or "", timeout_s=timeout_s)

    def post(self, path: str, body: Any = None, *, raw: str | bytes | None = None) -> tuple[int, dict]:
        if self.base_url is not None:
            assert raw is None, "raw bodies go through the in-process client only"
            return self._post_http(path, body if body is not None else {})
        data = raw if raw is not None else json.dumps(body if body is not None else {})
        response = self.client.post(path, data=data, content_type="application/json")
        return response.status_code, response.json()

    def _post_http(self, path: str, body: dict[str, Any]) -> tuple[int, dict]:
        from powernode_agent.platform_api import AgentApiError

        try:
            return 200, self.http.post(path, body)
        except AgentApiError as exc:
            if exc.status is None:  # not reachable: no answer to hand back
                raise
            return exc.status, {"error": {"type": exc.type, "message": exc.message, "details": exc.details}}

    def heartbeat(self, **fields: Any) -> tuple[int, dict]:
        body = {"agent_version": AGENT_VERSION, "runtimes": {"docker": {"phase": "none"}}, **fields}
        return self.post(HEARTBEAT, body)

    def heartbeat_ok(self, **fields: Any) -> dict:
        status, body = self.heartbeat(**fields)
        assert status == 200, ("heartbeat", status, body)
        return body

    def handshake(self, phase: str, **fields: Any) -> tuple[int, dict]:
        return self.post(HANDSHAKE, {"runtime": "docker", "phase": phase, **fields})

    def ok(self, phase: str, **fields: Any) -> dict:
        status, body = self.handshake(phase, **fields)
        assert status == 200, (phase, status, body)
        return body

    def walk_to_ready(self, *, version: str = ENGINE_VERSION) -> dict[str, Any]:
        """installing → wants_cert → wants_config → ready; returns every answer by phase."""
        answers = {"installing": self.ok("installing")}
        answers["wants_cert"] = self.ok("wants_cert", csr_pem=make_csr())
        answers["wants_config"] = self.ok("wants_config")
        answers["ready"] = self.ok("ready", version=version)
        return answers


HUB_SYNC = "/api/v1/hub/sync"
HUB_VERSION = "0.4.0"


class HubClient:
    """Plays a hub (``powernode-agent hub``) with a ``pnh_`` token: ``POST /api/v1/hub/sync`` as (status, json)."""

    def __init__(self, token: str | None) -> None:
        self.client = APIClient()
        if token:
            self.client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")

    def sync(self, body: Any = None, *, raw: str | bytes | None = None) -> tuple[int, dict]:
        data = raw if raw is not None else json.dumps({"hub_version": HUB_VERSION} if body is None else body)
        response = self.client.post(HUB_SYNC, data=data, content_type="application/json")
        return response.status_code, response.json()

    def ok(self, status: dict[str, Any] | None = None, **fields: Any) -> dict:
        body = {"hub_version": HUB_VERSION, **fields}
        if status is not None:
            body["status"] = status
        code, answer = self.sync(body)
        assert code == 200, (code, answer)
        return answer

    def peer_keys(self, network_id: str) -> list[str]:
        """The peer keys the hub is told to admit on a network (one sync without a status)."""
        networks = {n["network_id"]: n for n in self.ok()["networks"]}
        return [p["public_key"] for p in networks[str(network_id)]["peers"]]
